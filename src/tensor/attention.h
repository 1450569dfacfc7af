// Causal attention of one head over an f16 K/V cache, per ISA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tensor/kernels.h"

namespace llmn::tensor {

// n_q queries of one head at consecutive positions pos0 .. pos0 + n_q - 1:
// query i (hd floats at q + i * q_stride) attends to key/value rows 0 .. pos0 + i
// (f16, row j at k + j * k_stride and v + j * v_stride, hd and hdv values) with
// softmax(scale * q.k_j), and writes hdv floats to out + i * out_stride.
// Strides count elements, not bytes.
using AttentionF16Fn = void (*)(const float* q, size_t q_stride, int n_q, int pos0, const uint16_t* k,
                                size_t k_stride, const uint16_t* v, size_t v_stride, int hd, int hdv, float scale,
                                float* out, size_t out_stride);

// The kernel for the ISA in use (see kernels()).
AttentionF16Fn attention_f16();
// The kernel for one ISA, or nullptr when this CPU/OS cannot run it; scalar is
// the reference.
AttentionF16Fn attention_f16(Isa isa);

}  // namespace llmn::tensor
