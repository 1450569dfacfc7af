// Dequantization of hand-made blocks: every expected value below was worked out
// from the GGUF block layouts, not from our code.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor {
namespace {

template <class Block>
std::vector<float> expand(DType type, const Block& b, int n) {
    std::vector<float> out(size_t(n), -999.0f);
    scalar_kernels(type).dequantize_row(&b, out.data(), n);
    return out;
}

TEST(Dequantize, Q4_0SubtractsEightAndScales) {
    BlockQ4_0 b{};
    b.d = 0x3800;  // 0.5
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
    const auto y = expand(DType::q4_0, b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], (j - 8) * 0.5f);
        EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
    }
}

TEST(Dequantize, Q4_1AddsTheMin) {
    BlockQ4_1 b{};
    b.d = 0x3400;  // 0.25
    b.m = 0xBC00;  // -1
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
    const auto y = expand(DType::q4_1, b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], j * 0.25f - 1.0f);
        EXPECT_EQ(y[j + 16], (15 - j) * 0.25f - 1.0f);
    }
}

TEST(Dequantize, Q5_0TakesFifthBitFromQh) {
    BlockQ5_0 b{};
    b.d = 0x3C00;                                    // 1
    const uint8_t qh[4] = {0xFF, 0xFF, 0x00, 0x00};  // elements 0..15 have bit 4 set
    std::memcpy(b.qh, qh, 4);
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | (j << 4));
    const auto y = expand(DType::q5_0, b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], float(j));            // (j + 16) - 16
        EXPECT_EQ(y[j + 16], float(j - 16));  // j - 16
    }
}

TEST(Dequantize, Q5_1TakesFifthBitAndMin) {
    BlockQ5_1 b{};
    b.d = 0x3800;  // 0.5
    b.m = 0x4000;  // 2
    std::memset(b.qh, 0xAA, 4);  // odd elements have bit 4 set
    for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
    const auto y = expand(DType::q5_1, b, 32);
    for (int j = 0; j < 16; ++j) {
        const int hi = (j % 2) ? 16 : 0;
        EXPECT_EQ(y[j], float(j + hi) * 0.5f + 2.0f);
        EXPECT_EQ(y[j + 16], float(15 - j + hi) * 0.5f + 2.0f);
    }
}

TEST(Dequantize, Q8_0AndQ8_1ScaleSignedBytes) {
    BlockQ8_0 a{};
    a.d = 0x3000;  // 0.125
    BlockQ8_1 b{};
    b.d = 0x4000;  // 2
    for (int j = 0; j < 32; ++j) {
        a.qs[j] = int8_t(j - 16);
        b.qs[j] = int8_t(3 * j - 50);
    }
    const auto ya = expand(DType::q8_0, a, 32);
    const auto yb = expand(DType::q8_1, b, 32);
    for (int j = 0; j < 32; ++j) {
        EXPECT_EQ(ya[j], (j - 16) * 0.125f);
        EXPECT_EQ(yb[j], (3 * j - 50) * 2.0f);
    }
}

TEST(Dequantize, Q8_KUsesF32Scale) {
    BlockQ8_K b{};
    b.d = 0.01f;
    for (int j = 0; j < 256; ++j) b.qs[j] = int8_t(j - 128);
    const auto y = expand(DType::q8_k, b, 256);
    for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.01f * float(j - 128));
}

TEST(Dequantize, Q2_KUsesFourBitScalesAndMins) {
    BlockQ2_K b{};
    b.d = 0x4000;     // 2
    b.dmin = 0x3C00;  // 1
    for (int g = 0; g < 16; ++g) b.scales[g] = uint8_t(g | (2 << 4));  // scale g, min 2
    b.qs[33] = 0xE4;  // levels 0,1,2,3 for elements 129, 161, 193, 225
    const auto y = expand(DType::q2_k, b, 256);
    for (int e = 0; e < 256; ++e) {
        float want = -2.0f;
        if (e == 161) want = 2 * 10 * 1 - 2.0f;
        if (e == 193) want = 2 * 12 * 2 - 2.0f;
        if (e == 225) want = 2 * 14 * 3 - 2.0f;
        EXPECT_EQ(y[e], want) << "element " << e;
    }
}

TEST(Dequantize, Q3_KUnpacksSixBitScalesAndHmask) {
    BlockQ3_K b{};
    b.d = 0x3800;  // 0.5
    // Scales: group 0 -> +1, group 9 -> -32, group 15 -> +31, the rest 0.
    const uint8_t scales[12] = {0x01, 0, 0, 0, 0, 0, 0, 0xF0, 0xAA, 0x8A, 0xAA, 0xEA};
    std::memcpy(b.scales, scales, 12);
    std::memset(b.hmask, 0xFF, 32);
    b.hmask[0] = 0xFE;   // element 0 loses its high bit: level 3 - 4
    b.hmask[16] = 0x7F;  // element 240 likewise
    b.qs[0] = 0x03;      // element 0: low bits 3
    b.qs[48] = 0x42;     // element 144: low bits 2; element 240: low bits 1
    const auto y = expand(DType::q3_k, b, 256);
    for (int e = 0; e < 256; ++e) {
        float want = 0.0f;
        if (e == 0) want = 0.5f * 1 * -1;
        if (e == 144) want = 0.5f * -32 * 2;
        if (e == 240) want = 0.5f * 31 * -3;
        EXPECT_EQ(y[e], want) << "element " << e;
    }
}

// Scales/mins for Q4_K and Q5_K: sub-block 0 -> (1, 2), sub-block 5 -> (40, 33).
constexpr uint8_t kK4Scales[12] = {0x01, 0x80, 0, 0, 0x02, 0x80, 0, 0, 0, 0x18, 0, 0};

TEST(Dequantize, Q4_KUnpacksScalesAndMins) {
    BlockQ4_K b{};
    b.d = 0x3C00;     // 1
    b.dmin = 0x3800;  // 0.5
    std::memcpy(b.scales, kK4Scales, 12);
    b.qs[3] = 0x07;   // element 3 (sub-block 0): level 7
    b.qs[74] = 0xC0;  // element 170 (sub-block 5, high nibble): level 12
    const auto y = expand(DType::q4_k, b, 256);
    for (int e = 0; e < 256; ++e) {
        float want = 0.0f;
        if (e < 32) want = -1.0f;
        if (e >= 160 && e < 192) want = -16.5f;
        if (e == 3) want = 7 - 1.0f;
        if (e == 170) want = 40 * 12 - 16.5f;
        EXPECT_EQ(y[e], want) << "element " << e;
    }
}

TEST(Dequantize, Q5_KAddsFifthBitFromQh) {
    BlockQ5_K b{};
    b.d = 0x3C00;
    b.dmin = 0x3800;
    std::memcpy(b.scales, kK4Scales, 12);
    b.qs[3] = 0x07;
    b.qs[74] = 0xC0;
    b.qh[3] = 0x01;   // element 3: +16
    b.qh[10] = 0x20;  // element 170 (bit 170 / 32 = 5): +16
    const auto y = expand(DType::q5_k, b, 256);
    for (int e = 0; e < 256; ++e) {
        float want = 0.0f;
        if (e < 32) want = -1.0f;
        if (e >= 160 && e < 192) want = -16.5f;
        if (e == 3) want = 23 - 1.0f;
        if (e == 170) want = 40 * 28 - 16.5f;
        EXPECT_EQ(y[e], want) << "element " << e;
    }
}

TEST(Dequantize, Q6_KCombinesQlQhAndSignedScales) {
    BlockQ6_K b{};
    b.d = 0x3400;  // 0.25
    for (int g = 0; g < 16; ++g) b.scales[g] = 1;
    b.scales[0] = 2;
    b.scales[9] = -3;
    b.ql[5] = 0x0F;  // element 5: low nibble 15
    b.qh[5] = 0x02;  //            high bits 2 -> level 47
    b.ql[72] = 0x30;  // element 200 (second half, quarter 2): high nibble 3
    b.qh[40] = 0x30;  //            bits 4-5 = 3 -> level 51
    b.ql[86] = 0x01;  // element 150 (second half, quarter 0): level 1
    const auto y = expand(DType::q6_k, b, 256);
    for (int e = 0; e < 256; ++e) {
        float want = 0.25f * float(b.scales[e / 16]) * -32.0f;
        if (e == 5) want = 0.25f * 2 * 15;
        if (e == 200) want = 0.25f * 1 * 19;
        if (e == 150) want = 0.25f * -3 * -31;
        EXPECT_EQ(y[e], want) << "element " << e;
    }
}

TEST(Dequantize, HalfAndBrainFloatRowsExpandExactly) {
    const uint16_t h[3] = {0x3C00, 0xC000, 0x3555};
    std::vector<float> y(3);
    scalar_kernels(DType::f16).dequantize_row(h, y.data(), 3);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], -2.0f);
    EXPECT_EQ(y[2], 0.333251953125f);
    const uint16_t b[2] = {0x3F80, 0x4049};
    scalar_kernels(DType::bf16).dequantize_row(b, y.data(), 2);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 3.140625f);
}

}  // namespace
}  // namespace llmn::tensor
