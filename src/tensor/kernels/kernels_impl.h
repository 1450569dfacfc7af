// Internal wiring between the kernel translation units (not a public header).
//
// Each ISA file fills the entries it accelerates into a table indexed by the
// raw GGUF type id; kernel_table.cpp starts every ISA from the scalar table,
// then lays AVX2 and (for AVX-512) the AVX-512 entries on top.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tensor/kernels.h"

namespace llmn::tensor::detail {

// Raw type ids 0..30 (BF16 is 30).
inline constexpr int kTableSlots = 31;

static inline KernelTable& slot(KernelTable* tables, DType type) { return tables[uint32_t(type)]; }

// Rows may start at any byte (KernelTable promises no alignment, and the tests
// offset them on purpose), so element-wise code reads and writes f32/f16/bf16
// elements through memcpy: a misaligned `const float*` dereference is UB.
template <class T>
static inline T load_at(const void* p, int64_t i) {
    T v;
    std::memcpy(&v, static_cast<const char*>(p) + size_t(i) * sizeof(T), sizeof(T));
    return v;
}
template <class T>
static inline void store_at(void* p, int64_t i, T v) {
    std::memcpy(static_cast<char*>(p) + size_t(i) * sizeof(T), &v, sizeof(T));
}

// scalar.cpp: F32, F16, BF16 and the 32-wide quants (Q4_0 .. Q8_1).
void fill_scalar_basic(KernelTable* tables);
// scalar_kquants.cpp: Q2_K .. Q6_K dequantize and dot, Q8_K.
void fill_scalar_kquants(KernelTable* tables);
// scalar_kquantize.cpp: the reference round-to-nearest K-quant quantizers.
void fill_scalar_kquantize(KernelTable* tables);
// avx2.cpp / avx512*.cpp: only call when the CPU and OS support the ISA.
void fill_avx2(KernelTable* tables);
void fill_avx512(KernelTable* tables);
// avx512_gemm.cpp: multi-row x multi-token kernels (KernelTable::gemm).
void fill_avx512_gemm(KernelTable* tables);
// avx512_gemm_f16.cpp: F16 gemm; call after fill_avx512 (it keeps that table's F16 vec_dot).
void fill_avx512_gemm_f16(KernelTable* tables);
// avx512_gemm_kquants.cpp: Q4_K/Q6_K gemm; call after fill_avx512 (it uses that table's vec_dot for few tokens).
void fill_avx512_gemm_kquants(KernelTable* tables);
// avx512_attention.cpp: tensor::attention_f16 for AVX-512 (see tensor/attention.h).
void attention_f16_avx512(const float* q, size_t q_stride, int n_q, int pos0, const uint16_t* k, size_t k_stride,
                          const uint16_t* v, size_t v_stride, int hd, int hdv, float scale, float* out,
                          size_t out_stride);

}  // namespace llmn::tensor::detail
