#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/fp16.h"

namespace llmn::tensor {
namespace {

TEST(Fp16, ConvertsExactValuesBothWays) {
    const struct { float f; uint16_t h; } cases[] = {
        {0.0f, 0x0000},     {1.0f, 0x3C00},   {-2.0f, 0xC000},  {0.5f, 0x3800},
        {65504.0f, 0x7BFF}, {6.103515625e-5f, 0x0400},  // smallest normal
        {5.9604644775390625e-8f, 0x0001},               // smallest subnormal
        {3.0517578125e-5f, 0x0200},                     // a subnormal
    };
    for (const auto& c : cases) {
        EXPECT_EQ(f32_to_fp16(c.f), c.h) << c.f;
        EXPECT_EQ(fp16_to_f32(c.h), c.f) << std::hex << c.h;
    }
}

TEST(Fp16, KeepsSignOfZeroAndInfinity) {
    EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
    EXPECT_TRUE(std::signbit(fp16_to_f32(0x8000)));
    EXPECT_EQ(f32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
    EXPECT_EQ(f32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
    EXPECT_EQ(fp16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
}

TEST(Fp16, OverflowRoundsToInfinityAtHalfwayPoint) {
    EXPECT_EQ(f32_to_fp16(65519.99f), 0x7BFF);
    EXPECT_EQ(f32_to_fp16(65520.0f), 0x7C00);
    EXPECT_EQ(f32_to_fp16(1e10f), 0x7C00);
}

TEST(Fp16, NanStaysNan) {
    EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_TRUE(std::isnan(fp16_to_f32(0x7E00)));
}

TEST(Fp16, RoundsToNearestEven) {
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even 1.
    EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f), 0x3C00);
    // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9: goes up.
    EXPECT_EQ(f32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);
    EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    // Subnormal tie: 1.5 * 2^-24 rounds to the even 2 * 2^-24.
    EXPECT_EQ(f32_to_fp16(1.5f * 0x1p-24f), 0x0002);
    EXPECT_EQ(f32_to_fp16(0.5f * 0x1p-24f), 0x0000);
}

TEST(Fp16, EveryHalfSurvivesARoundTrip) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_f32(uint16_t(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_fp16(f), h) << std::hex << h;
    }
}

TEST(Bf16, TakesTheTopHalfOfF32) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
    EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
    EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
    EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
}

TEST(Bf16, RoundsToNearestEvenLikeGgml) {
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3F808000)), 0x3F80);  // tie, even stays
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3F818000)), 0x3F82);  // tie, odd rounds up
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3F808001)), 0x3F81);
    EXPECT_EQ(f32_to_bf16(bits_to_f32(0x7F7FFFFF)), 0x7F80);  // max float rounds to inf
}

TEST(Bf16, NanIsQuietedNotTurnedIntoInfinity) {
    const uint16_t h = f32_to_bf16(bits_to_f32(0x7F800001));  // signalling NaN, payload in low bits
    EXPECT_TRUE(std::isnan(bf16_to_f32(h)));
    EXPECT_EQ(h & 0x0040, 0x0040);
}

}  // namespace
}  // namespace llmn::tensor
