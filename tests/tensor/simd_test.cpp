// Every SIMD kernel the host can run equals the scalar reference (STYLE rule 7):
// random data, odd block counts, misaligned rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tensor/kernels.h"
#include "tensor_test_util.h"

namespace llmn::tensor {
namespace {

using test::Buffer;

// SIMD dots sum the same integer block products in a different float order
// (and BF16 may use the hardware dot): differences stay within this fraction
// of sum |w_i * a_i|.
constexpr double kSimdDotRelTol = 1e-5;
// Misalignments (bytes past a 64-byte boundary) tried for each row.
constexpr size_t kOffsets[] = {0, 1, 3, 18};

std::vector<Isa> simd_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::avx2, Isa::avx512})
        if (isa_kernels(isa, DType::f32)) out.push_back(isa);
    return out;
}

// An odd number of blocks, plus enough blocks to cover unrolled main loops.
std::vector<int64_t> odd_lengths(DType t) {
    const int64_t bs = dtype_info(t).block_size;
    if (bs == 1) return {1, 7, 33, 67, 1031, 4099};
    if (bs == 32) return {32, 96, 224, 1056, 4128};
    return {256, 768, 1792, 4352};
}

std::string where(Isa isa, DType t, int64_t n, size_t offset) {
    return std::string(isa_name(isa)) + " " + std::string(dtype_name(t)) + " n=" + std::to_string(n) +
           " offset=" + std::to_string(offset);
}

TEST(Simd, ActiveIsaIsTheBestSupportedOneUnlessOverridden) {
    if (const char* env = std::getenv("LLM_NODE_ISA"); env && *env) GTEST_SKIP() << "LLM_NODE_ISA is set";
    if (simd_isas().empty()) GTEST_SKIP() << "no SIMD ISA on this host: only the scalar path runs";
    EXPECT_EQ(active_isa(), simd_isas().back());
}

TEST(Simd, VecDotEqualsScalarOnRandomMisalignedRows) {
    for (Isa isa : simd_isas()) {
        for (DType t : test::computable_types()) {
            const KernelTable& ref = scalar_kernels(t);
            const KernelTable& simd = *isa_kernels(isa, t);
            ASSERT_EQ(simd.vec_dot_type, ref.vec_dot_type);
            for (int64_t n : odd_lengths(t)) {
                const std::vector<float> w = test::random_row(n, uint32_t(n) * 3 + 1);
                const std::vector<float> a = test::random_row(n, uint32_t(n) * 5 + 2, 2.0f);
                for (size_t offset : kOffsets) {
                    const Buffer wq = test::quantized(t, w, offset);
                    const Buffer aq = test::quantized(ref.vec_dot_type, a, offset + 5);
                    const double want = ref.vec_dot(n, wq.data(), aq.data());
                    const double got = simd.vec_dot(n, wq.data(), aq.data());
                    const double scale = test::abs_dot(test::dequantized(t, wq.data(), n),
                                                       test::dequantized(ref.vec_dot_type, aq.data(), n));
                    ASSERT_NEAR(got, want, kSimdDotRelTol * scale + 1e-6) << where(isa, t, n, offset);
                }
            }
        }
    }
}

TEST(Simd, ActivationQuantizeIsBitIdenticalToScalar) {
    for (Isa isa : simd_isas()) {
        for (DType t : test::activation_types()) {
            const int64_t bs = dtype_info(t).block_size;
            for (int64_t blocks : {1, 3, 17}) {
                const int64_t n = bs == 1 ? blocks * 37 : blocks * bs;
                std::vector<float> x = test::random_row(n, uint32_t(blocks) + 100, 3.0f);
                if (n > 40) x[5] = 0.0f, x[6] = -x[7];  // exact zero and a tie of magnitudes
                for (size_t offset : kOffsets) {
                    const size_t bytes = row_bytes(t, n);
                    Buffer want(bytes, offset), got(bytes, offset + 2);
                    scalar_kernels(t).quantize_row(x.data(), want.data(), n);
                    isa_kernels(isa, t)->quantize_row(x.data(), got.data(), n);
                    ASSERT_EQ(std::memcmp(want.data(), got.data(), bytes), 0) << where(isa, t, n, offset);
                }
            }
        }
    }
}

TEST(Simd, ActivationQuantizeHandlesAllZeroBlocks) {
    for (Isa isa : simd_isas()) {
        for (DType t : {DType::q8_0, DType::q8_1, DType::q8_k}) {
            const int64_t n = dtype_info(t).block_size * 2;
            const std::vector<float> x(size_t(n), 0.0f);
            Buffer want(row_bytes(t, n), 0), got(row_bytes(t, n), 1);
            scalar_kernels(t).quantize_row(x.data(), want.data(), n);
            isa_kernels(isa, t)->quantize_row(x.data(), got.data(), n);
            EXPECT_EQ(std::memcmp(want.data(), got.data(), row_bytes(t, n)), 0) << where(isa, t, n, 0);
        }
    }
}

TEST(Simd, DequantizeEqualsScalar) {
    for (Isa isa : simd_isas()) {
        for (DType t : test::computable_types()) {
            const int64_t n = dtype_info(t).block_size == 256 ? 768 : 96;
            const std::vector<float> x = test::random_row(n, 77);
            const Buffer q = test::quantized(t, x, 3);
            std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
            scalar_kernels(t).dequantize_row(q.data(), want.data(), n);
            isa_kernels(isa, t)->dequantize_row(q.data(), got.data(), n);
            EXPECT_EQ(want, got) << where(isa, t, n, 3);
        }
    }
}

}  // namespace
}  // namespace llmn::tensor
