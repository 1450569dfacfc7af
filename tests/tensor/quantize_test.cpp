// Reference quantizers round-trip with bounded error, and the scalar dot
// products agree with expanding both rows to f32.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "tensor/kernels.h"
#include "tensor/fp16.h"
#include "tensor/quant_blocks.h"
#include "tensor_test_util.h"

namespace llmn::tensor {
namespace {

using test::Buffer;

// RMS round-trip error of N(0,1) data relative to the data's RMS, per type:
// upper bounds about 1.3x what these round-to-nearest quantizers reach
// (llama.cpp's searching quantizers do somewhat better on the K-quants).
const std::map<DType, double> kMaxRelRmsError = {
    {DType::f32, 0.0},    {DType::f16, 5e-4},   {DType::bf16, 3e-3},  {DType::q8_0, 0.008},
    {DType::q8_1, 0.008}, {DType::q8_k, 0.009}, {DType::q4_0, 0.11},  {DType::q4_1, 0.10},
    {DType::q5_0, 0.055}, {DType::q5_1, 0.05},  {DType::q2_k, 0.42},  {DType::q3_k, 0.20},
    {DType::q4_k, 0.10},  {DType::q5_k, 0.05},  {DType::q6_k, 0.025},
};

// A scalar dot and the f64 dot of the two dequantized rows may differ by float
// rounding of the block scales and sums (and Q8_1's f16 `s`), relative to sum |w*a|.
constexpr double kDotVsDequantRelTol = 2e-3;

constexpr int64_t kRow = 4096;

std::vector<DType> all_quantizable() {
    std::vector<DType> types = test::computable_types();
    types.push_back(DType::q8_1);
    types.push_back(DType::q8_k);
    return types;
}

TEST(Quantize, EveryTypeHasReferenceQuantizeAndDequantize) {
    for (DType t : all_quantizable()) {
        EXPECT_NE(scalar_kernels(t).quantize_row, nullptr) << dtype_name(t);
        EXPECT_NE(scalar_kernels(t).dequantize_row, nullptr) << dtype_name(t);
    }
}

TEST(Quantize, RoundTripErrorIsBounded) {
    const std::vector<float> x = test::random_row(kRow, 7);
    for (DType t : all_quantizable()) {
        const Buffer q = test::quantized(t, x, 0);
        const std::vector<float> y = test::dequantized(t, q.data(), kRow);
        double err = 0.0;
        for (int64_t i = 0; i < kRow; ++i) err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        const double rel = std::sqrt(err / kRow) / test::rms(x);
        EXPECT_LE(rel, kMaxRelRmsError.at(t)) << dtype_name(t);
    }
}

TEST(Quantize, ConstantAndZeroBlocksRoundTripClosely) {
    for (float c : {0.0f, 1.5f, -0.75f}) {
        const std::vector<float> x(512, c);
        for (DType t : all_quantizable()) {
            const Buffer q = test::quantized(t, x, 0);
            const std::vector<float> y = test::dequantized(t, q.data(), 512);
            for (float v : y) ASSERT_NEAR(v, c, 0.02 * std::fabs(c) + 1e-6) << dtype_name(t) << " const " << c;
        }
    }
}

TEST(Quantize, Q8_KBlockSumsMatchItsValues) {
    const std::vector<float> x = test::random_row(512, 11);
    const Buffer q = test::quantized(DType::q8_k, x, 0);
    const auto* b = reinterpret_cast<const BlockQ8_K*>(q.data());
    for (int ib = 0; ib < 2; ++ib) {
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += b[ib].qs[16 * g + l];
            EXPECT_EQ(b[ib].bsums[g], s);
        }
    }
}

TEST(Quantize, Q8_1SumFieldIsScaleTimesSumOfValues) {
    const std::vector<float> x = test::random_row(64, 12);
    const Buffer q = test::quantized(DType::q8_1, x, 0);
    const auto* b = reinterpret_cast<const BlockQ8_1*>(q.data());
    for (int ib = 0; ib < 2; ++ib) {
        int s = 0;
        for (int j = 0; j < 32; ++j) s += b[ib].qs[j];
        const float d = fp16_to_f32(b[ib].d);
        EXPECT_NEAR(fp16_to_f32(b[ib].s), d * s, std::fabs(d * s) * 1e-3 + 1e-6);
    }
}

TEST(Quantize, Q8_KLargestMagnitudeMapsToMinus127) {
    std::vector<float> x(256, 0.5f);
    x[17] = -3.0f;
    const Buffer q = test::quantized(DType::q8_k, x, 0);
    const auto* b = reinterpret_cast<const BlockQ8_K*>(q.data());
    EXPECT_EQ(b->qs[17], -127);  // -3 * (-127 / -3)
    EXPECT_FLOAT_EQ(b->d, 3.0f / 127.0f);
    EXPECT_EQ(b->qs[0], 21);  // round(0.5 * -127 / -3) = round(21.17)
}

TEST(VecDot, ScalarMatchesDotOfDequantizedRows) {
    const std::vector<float> w = test::random_row(kRow, 21);
    const std::vector<float> a = test::random_row(kRow, 22);
    for (DType t : test::computable_types()) {
        const KernelTable& k = scalar_kernels(t);
        ASSERT_NE(k.vec_dot, nullptr) << dtype_name(t);
        const Buffer wq = test::quantized(t, w, 0);
        const Buffer aq = test::quantized(k.vec_dot_type, a, 0);
        const double want = test::dot(test::dequantized(t, wq.data(), kRow),
                                      test::dequantized(k.vec_dot_type, aq.data(), kRow));
        const double got = k.vec_dot(kRow, wq.data(), aq.data());
        EXPECT_NEAR(got, want, kDotVsDequantRelTol * test::abs_dot(w, a)) << dtype_name(t);
    }
}

TEST(VecDot, QuantizedDotApproximatesF32Dot) {
    const std::vector<float> w = test::random_row(kRow, 31);
    const std::vector<float> a = test::random_row(kRow, 32);
    const double exact = test::dot(w, a);
    for (DType t : test::computable_types()) {
        const KernelTable& k = scalar_kernels(t);
        const Buffer wq = test::quantized(t, w, 0);
        const Buffer aq = test::quantized(k.vec_dot_type, a, 0);
        const double got = k.vec_dot(kRow, wq.data(), aq.data());
        // The dot's error scales like the weight error times |a| * sqrt(n).
        const double tol = 4.0 * kMaxRelRmsError.at(t) * std::sqrt(double(kRow)) + 1e-3;
        EXPECT_NEAR(got, exact, tol) << dtype_name(t);
    }
}

}  // namespace
}  // namespace llmn::tensor
