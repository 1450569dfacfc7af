// attention_f16 of every ISA the host runs equals the scalar reference: odd
// head sizes (masked tails), query counts that hit the lane and row paths,
// positions past zero, padded (misaligned) K/V rows and strided outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tensor/attention.h"
#include "tensor/fp16.h"
#include "tensor_test_util.h"

namespace llmn::tensor {
namespace {

// Outputs are convex combinations of V rows (|v| <= ~4): float summation order
// and the vector exp differ from the reference by far less than this.
constexpr double kAttnAbsTol = 2e-5;

struct Case {
    int hd, hdv, n_q, pos0;
};

TEST(Attention, MatchesScalarReference) {
    const Case cases[] = {{64, 64, 1, 0},   {64, 64, 1, 37},  {64, 64, 3, 5},   {64, 64, 16, 0},
                          {64, 64, 23, 9},  {64, 64, 64, 0},  {80, 80, 20, 70}, {37, 19, 7, 3},
                          {128, 128, 5, 100}, {8, 8, 17, 1},  {96, 64, 33, 130}};
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
        const AttentionF16Fn fn = attention_f16(isa);
        if (!fn) continue;
        for (const Case& c : cases) {
            const int n_kv = c.pos0 + c.n_q;
            const size_t ks = size_t(c.hd) + 3, vs = size_t(c.hdv) + 5, qs = size_t(c.hd) + 1, os = size_t(c.hdv) + 2;
            const std::vector<float> q = test::random_row(int64_t(qs) * c.n_q, 11, 1.0f);
            const std::vector<float> kf = test::random_row(int64_t(ks) * n_kv, 12, 1.0f);
            const std::vector<float> vf = test::random_row(int64_t(vs) * n_kv, 13, 1.0f);
            std::vector<uint16_t> k(kf.size()), v(vf.size());
            for (size_t i = 0; i < k.size(); ++i) k[i] = f32_to_fp16(kf[i]);
            for (size_t i = 0; i < v.size(); ++i) v[i] = f32_to_fp16(vf[i]);
            const float scale = 1.0f / std::sqrt(float(c.hd));
            std::vector<float> want(os * c.n_q, 0.0f), got(os * c.n_q, 0.0f);
            attention_f16(Isa::scalar)(q.data(), qs, c.n_q, c.pos0, k.data() + 1, ks, v.data() + 1, vs, c.hd, c.hdv,
                                       scale, want.data(), os);
            fn(q.data(), qs, c.n_q, c.pos0, k.data() + 1, ks, v.data() + 1, vs, c.hd, c.hdv, scale, got.data(), os);
            for (int iq = 0; iq < c.n_q; ++iq)
                for (int i = 0; i < c.hdv; ++i)
                    ASSERT_NEAR(got[iq * os + i], want[iq * os + i], kAttnAbsTol)
                        << isa_name(isa) << " hd " << c.hd << " n_q " << c.n_q << " pos0 " << c.pos0 << " q " << iq
                        << " i " << i;
            for (int iq = 0; iq < c.n_q; ++iq)
                for (size_t i = size_t(c.hdv); i < os; ++i) ASSERT_EQ(got[iq * os + i], 0.0f);  // padding untouched
        }
    }
}

}  // namespace
}  // namespace llmn::tensor
