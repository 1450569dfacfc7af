#include "tensor/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/fp16.h"
#include "tensor/kernels/kernels_impl.h"

namespace llmn::tensor {
namespace {

// The reference: one query at a time, scores in f32, softmax sum in double.
void attention_f16_scalar(const float* q, size_t q_stride, int n_q, int pos0, const uint16_t* k, size_t k_stride,
                          const uint16_t* v, size_t v_stride, int hd, int hdv, float scale, float* out,
                          size_t out_stride) {
    std::vector<float> scores(static_cast<size_t>(pos0 + n_q));
    std::vector<float> acc(static_cast<size_t>(hdv));
    for (int iq = 0; iq < n_q; ++iq) {
        const float* qi = q + size_t(iq) * q_stride;
        const int n_kv = pos0 + iq + 1;
        for (int j = 0; j < n_kv; ++j) {
            const uint16_t* kj = k + size_t(j) * k_stride;
            float s = 0.0f;
            for (int i = 0; i < hd; ++i) s += qi[i] * fp16_to_f32(kj[i]);
            scores[j] = s * scale;
        }
        float mx = scores[0];
        for (int j = 1; j < n_kv; ++j) mx = std::max(mx, scores[j]);
        double sum = 0.0;
        for (int j = 0; j < n_kv; ++j) {
            scores[j] = std::exp(scores[j] - mx);
            sum += scores[j];
        }
        const float inv = float(1.0 / sum);
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int j = 0; j < n_kv; ++j) {
            const uint16_t* vj = v + size_t(j) * v_stride;
            const float p = scores[j] * inv;
            for (int i = 0; i < hdv; ++i) acc[i] += p * fp16_to_f32(vj[i]);
        }
        std::copy(acc.begin(), acc.end(), out + size_t(iq) * out_stride);
    }
}

}  // namespace

AttentionF16Fn attention_f16(Isa isa) {
    if (!isa_kernels(isa, DType::f32)) return nullptr;
#if LLMN_X86_KERNELS
    if (isa == Isa::avx512) return detail::attention_f16_avx512;
#endif
    return attention_f16_scalar;
}

AttentionF16Fn attention_f16() { return attention_f16(active_isa()); }

}  // namespace llmn::tensor
