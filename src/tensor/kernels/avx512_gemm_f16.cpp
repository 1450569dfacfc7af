// AVX-512 KernelTable::gemm for F16 weights x F16 activations.
//
// Prompts put 16 tokens in the lanes of a register: the activations are
// converted to f32 and transposed once per call (at[k] = element k of 16
// tokens), a chunk of R weight rows is converted to f32 once, and each weight
// value is broadcast (from memory, folded into the FMA) against at[k]: one
// FMA per weight element and 16 tokens, with R independent accumulators and
// no horizontal sums. Rows are the outer loop so the weights stream from memory
// once per call. Few tokens (decode) use the AVX-512 vec_dot row by row.
// Built with the AVX-512 flags in src/tensor/CMakeLists.txt; the products are
// the f16 values' exact f32 products, summed in another order than vec_dot.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "tensor/kernels/kernels_impl.h"

namespace llmn::tensor::detail {
namespace {

constexpr int kLanes = 16;
// Weight rows per block (accumulators per token group) and k values per chunk.
constexpr int kRows = 8;
constexpr int kChunk = 256;
// Fewer tokens than this go through vec_dot.
constexpr int64_t kMinTokens = 8;

float (*g_vec_dot)(int64_t, const void*, const void*) = nullptr;  // the AVX-512 F16 vec_dot

inline __mmask16 tail16(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

inline void convert_row(const uint16_t* src, int64_t n, float* dst) {
    for (int64_t i = 0; i < n; i += kLanes) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

void gemm_rows(int64_t n, const uint8_t* w, size_t ws, int64_t n_rows, const uint8_t* a, size_t as, int64_t n_tok,
               float* out, size_t os) {
    constexpr int64_t kRowBlock = 16;  // rows whose weights stay in cache across the tokens
    for (int64_t rb = 0; rb < n_rows; rb += kRowBlock) {
        const int64_t re = std::min(n_rows, rb + kRowBlock);
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = rb; r < re; ++r) out[size_t(t) * os + r] = g_vec_dot(n, w + size_t(r) * ws, a + size_t(t) * as);
    }
}

// acc[g][r] (16 lanes each) += sum over the chunk of wf[r][k] * at[g][k0 + k].
template <int R>
void block(int64_t n, const uint8_t* w, size_t ws, const float* at, int groups, float* acc, float* wf) {
    for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
        const int64_t kc = std::min<int64_t>(kChunk, n - k0);
        for (int r = 0; r < R; ++r)
            convert_row(reinterpret_cast<const uint16_t*>(w + size_t(r) * ws) + k0, kc, wf + r * kChunk);
        for (int g = 0; g < groups; ++g) {
            const float* ag = at + (size_t(g) * size_t(n) + size_t(k0)) * kLanes;
            float* cg = acc + size_t(g) * R * kLanes;
            __m512 c[R];
            for (int r = 0; r < R; ++r) c[r] = _mm512_loadu_ps(cg + r * kLanes);
            for (int64_t k = 0; k < kc; ++k) {
                const __m512 ak = _mm512_loadu_ps(ag + k * kLanes);
                for (int r = 0; r < R; ++r) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(wf[r * kChunk + k]), ak, c[r]);
            }
            for (int r = 0; r < R; ++r) _mm512_storeu_ps(cg + r * kLanes, c[r]);
        }
    }
}

using BlockFn = void (*)(int64_t, const uint8_t*, size_t, const float*, int, float*, float*);
constexpr BlockFn kBlocks[kRows] = {&block<1>, &block<2>, &block<3>, &block<4>,
                                    &block<5>, &block<6>, &block<7>, &block<8>};

void gemm_f16(int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as, int64_t n_tok,
              float* out, size_t os) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(act);
    if (n_tok < kMinTokens) return gemm_rows(n, wb, ws, n_rows, ab, as, n_tok, out, os);
    const int groups = int((n_tok + kLanes - 1) / kLanes);
    thread_local std::vector<float> at, acc, wf, row;
    at.assign(size_t(groups) * size_t(n) * kLanes, 0.0f);
    acc.resize(size_t(groups) * kRows * kLanes);
    wf.resize(size_t(kRows) * kChunk);
    row.resize(size_t(n));
    for (int64_t t = 0; t < n_tok; ++t) {
        convert_row(reinterpret_cast<const uint16_t*>(ab + size_t(t) * as), n, row.data());
        float* dst = at.data() + size_t(t / kLanes) * size_t(n) * kLanes + size_t(t % kLanes);
        for (int64_t k = 0; k < n; ++k) dst[size_t(k) * kLanes] = row[size_t(k)];
    }
    for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
        const int R = int(std::min<int64_t>(kRows, n_rows - r0));
        std::fill(acc.begin(), acc.end(), 0.0f);
        kBlocks[R - 1](n, wb + size_t(r0) * ws, ws, at.data(), groups, acc.data(), wf.data());
        for (int g = 0; g < groups; ++g)
            for (int r = 0; r < R; ++r) {
                const float* c = acc.data() + (size_t(g) * R + r) * kLanes;
                const int valid = int(std::min<int64_t>(kLanes, n_tok - int64_t(g) * kLanes));
                for (int l = 0; l < valid; ++l) out[size_t(g * kLanes + l) * os + size_t(r0 + r)] = c[l];
            }
    }
}

}  // namespace

void fill_avx512_gemm_f16(KernelTable* t) {
    g_vec_dot = slot(t, DType::f16).vec_dot;
    slot(t, DType::f16).gemm = gemm_f16;
}

}  // namespace llmn::tensor::detail
