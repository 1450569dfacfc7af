// Every KernelTable::gemm the host can run equals the scalar vec_dot for each
// (row, token) pair (STYLE rule 7): random data, odd row and token counts that
// hit every tile shape, odd block counts, misaligned and padded rows.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tensor/kernels.h"
#include "tensor_test_util.h"

namespace llmn::tensor {
namespace {

using test::Buffer;

// gemm sums the same integer block products as vec_dot in another float order:
// differences stay within this fraction of sum |w_i * a_i|.
constexpr double kGemmRelTol = 1e-5;
constexpr double kGemmAbsTol = 1e-6;
// Bytes of padding after each row, so rows after the first are misaligned too.
constexpr size_t kRowPads[] = {0, 3};
// Misalignment of the first weight row (activations get this + 5).
constexpr size_t kOffsets[] = {0, 1, 18};
// Row and token counts: 1, less than a tile, more than one tile with a remainder.
constexpr int64_t kRowCounts[] = {1, 3, 6, 9};
constexpr int64_t kTokenCounts[] = {1, 2, 5, 7, 8, 13, 20};

std::vector<Isa> all_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
        if (isa_kernels(isa, DType::f32)) out.push_back(isa);
    return out;
}

// Odd block counts, including a count that leaves a partial group of 8 blocks.
std::vector<int64_t> lengths(DType t) {
    const int64_t bs = dtype_info(t).block_size;
    if (bs == 1) return {7, 67, 1031};
    if (bs == 32) return {32, 13 * 32, 67 * 32};
    return {256, 3 * 256};
}

// `count` rows of `type`, each row_bytes + pad apart, starting `offset` past a
// 64-byte boundary; the values of row i are seeded with seed + i.
struct Rows {
    Rows(DType type, int64_t n, int64_t count, size_t pad, size_t offset, uint32_t seed, float sigma)
        : stride(row_bytes(type, n) + pad), buf(stride * size_t(count), offset) {
        for (int64_t i = 0; i < count; ++i) {
            const std::vector<float> v = test::random_row(n, seed + uint32_t(i), sigma);
            scalar_kernels(type).quantize_row(v.data(), buf.data() + size_t(i) * stride, n);
            values.push_back(test::dequantized(type, buf.data() + size_t(i) * stride, n));
        }
    }
    const uint8_t* row(int64_t i) const { return buf.data() + size_t(i) * stride; }
    size_t stride;
    Buffer buf;
    std::vector<std::vector<float>> values;  // dequantized, for the tolerance scale
};

TEST(Gemm, EqualsScalarVecDotForEveryRowAndToken) {
    int checked = 0;
    for (Isa isa : all_isas()) {
        for (DType t : test::computable_types()) {
            const KernelTable& k = *isa_kernels(isa, t);
            if (!k.gemm) continue;
            const KernelTable& ref = scalar_kernels(t);
            ASSERT_EQ(k.vec_dot_type, ref.vec_dot_type);
            for (int64_t n : lengths(t)) {
                for (size_t pad : kRowPads) {
                    for (size_t offset : kOffsets) {
                        const int64_t max_rows = kRowCounts[std::size(kRowCounts) - 1];
                        const int64_t max_tok = kTokenCounts[std::size(kTokenCounts) - 1];
                        const Rows w(t, n, max_rows, pad, offset, uint32_t(n) * 7 + 1, 1.0f);
                        const Rows a(ref.vec_dot_type, n, max_tok, pad, offset + 5, uint32_t(n) * 11 + 2, 2.0f);
                        for (int64_t rows : kRowCounts) {
                            for (int64_t tok : kTokenCounts) {
                                const size_t out_stride = size_t(rows) + 2;  // rows of out are not packed
                                std::vector<float> out(out_stride * size_t(tok), -1.0f);
                                k.gemm(n, w.row(0), w.stride, rows, a.row(0), a.stride, tok, out.data(), out_stride);
                                for (int64_t ti = 0; ti < tok; ++ti) {
                                    for (int64_t r = 0; r < rows; ++r) {
                                        const double want = ref.vec_dot(n, w.row(r), a.row(ti));
                                        const double got = out[size_t(ti) * out_stride + size_t(r)];
                                        const double scale = test::abs_dot(w.values[size_t(r)], a.values[size_t(ti)]);
                                        ASSERT_NEAR(got, want, kGemmRelTol * scale + kGemmAbsTol)
                                            << isa_name(isa) << " " << dtype_name(t) << " n=" << n << " rows=" << rows
                                            << " tok=" << tok << " r=" << r << " t=" << ti << " pad=" << pad
                                            << " offset=" << offset;
                                    }
                                    // Padding between output rows is left alone.
                                    for (size_t c = size_t(rows); c < out_stride; ++c)
                                        ASSERT_EQ(out[size_t(ti) * out_stride + c], -1.0f);
                                }
                            }
                        }
                        ++checked;
                    }
                }
            }
        }
    }
    if (checked == 0) GTEST_SKIP() << "no gemm kernels on this host";
}

}  // namespace
}  // namespace llmn::tensor
