// AVX-512 (F, BW, VL, DQ, VNNI, BF16) kernels, laid over the AVX2 table.
// Built with the AVX-512 flags in src/tensor/CMakeLists.txt; only called when
// the CPU and OS support them. Each kernel mirrors its scalar reference.
#include <immintrin.h>

#include <cstring>

#include "tensor/kernels/kernels_impl.h"
#include "tensor/kernels/simd_common.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

using namespace simd;

inline __mmask16 tail16(int64_t left) { return __mmask16((1u << left) - 1); }

// ---- F32 / F16 / BF16 ------------------------------------------------------

float vec_dot_f32(int64_t n, const void* row, const void* act) {
    const float* x = static_cast<const float*>(row);
    const float* y = static_cast<const float*>(act);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; ++k)
            acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16 * k), _mm512_loadu_ps(y + i + 16 * k), acc[k]);
    for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc[0]);
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        acc[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), acc[1]);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

inline __m512 load_f16x16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

float vec_dot_f16(int64_t n, const void* row, const void* act) {
    const uint16_t* x = static_cast<const uint16_t*>(row);
    const uint16_t* y = static_cast<const uint16_t*>(act);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; ++k)
            acc[k] = _mm512_fmadd_ps(load_f16x16(x + i + 16 * k), load_f16x16(y + i + 16 * k), acc[k]);
    for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(load_f16x16(x + i), load_f16x16(y + i), acc[0]);
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 a = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
        const __m512 b = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i));
        acc[1] = _mm512_fmadd_ps(a, b, acc[1]);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

inline __m512bh load_bf16x32(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }

float vec_dot_bf16(int64_t n, const void* row, const void* act) {
    const uint16_t* x = static_cast<const uint16_t*>(row);
    const uint16_t* y = static_cast<const uint16_t*>(act);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int k = 0; k < 4; ++k)
            acc[k] = _mm512_dpbf16_ps(acc[k], load_bf16x32(x + i + 32 * k), load_bf16x32(y + i + 32 * k));
    for (; i + 32 <= n; i += 32) acc[0] = _mm512_dpbf16_ps(acc[0], load_bf16x32(x + i), load_bf16x32(y + i));
    if (i < n) {
        const __mmask32 m = __mmask32((uint64_t(1) << (n - i)) - 1);
        acc[1] = _mm512_dpbf16_ps(acc[1], (__m512bh)_mm512_maskz_loadu_epi16(m, x + i),
                                  (__m512bh)_mm512_maskz_loadu_epi16(m, y + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

void quantize_f16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT));
    }
}

// Round to nearest even on the bit pattern, NaN quieted: the scalar f32_to_bf16
// exactly (the hardware conversion would flush subnormals).
void quantize_bf16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail16(n - i);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, odd)), 16);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(r));
    }
}

// ---- Q8_0 / Q8_1 / Q8_K activations -------------------------------------------

// 32 floats -> int8 with the scalar quantize_block_q8's d; returns d and *sum.
float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, id), kRound);
    const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, id), kRound);
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
    return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
    BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
    int sum;
    for (int64_t ib = 0; ib < n / kQK; ++ib) y[ib].d = to_f16(quantize_block_q8(src + ib * kQK, y[ib].qs, &sum));
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
    BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        int sum;
        const float d = quantize_block_q8(src + ib * kQK, y[ib].qs, &sum);
        y[ib].d = to_f16(d);
        y[ib].s = to_f16(float(sum) * d);
    }
}

void quantize_q8_k(const float* src, void* dst, int64_t n) {
    BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        __m512 amax_v = _mm512_setzero_ps();
        for (int j = 0; j < kQKK; j += 16) amax_v = _mm512_max_ps(amax_v, _mm512_abs_ps(_mm512_loadu_ps(src + j)));
        const float amax = _mm512_reduce_max_ps(amax_v);
        if (amax == 0.0f) {
            std::memset(&y[ib], 0, sizeof y[ib]);
            continue;
        }
        int first = 0;  // first element of largest magnitude decides the sign
        const __m512 target = _mm512_set1_ps(amax);
        for (int j = 0; j < kQKK; j += 16) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + j)), target, _CMP_EQ_OQ);
            if (hit) {
                first = j + __builtin_ctz(unsigned(hit));
                break;
            }
        }
        const float iscale = -127.0f / src[first];
        const __m512 vs = _mm512_set1_ps(iscale);
        const __m512i top = _mm512_set1_epi32(127);
        for (int g = 0; g < kQKK / 16; ++g) {
            const __m512 v = _mm512_mul_ps(vs, _mm512_loadu_ps(src + 16 * g));
            const __m512i q = _mm512_min_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), top);
            y[ib].bsums[g] = int16_t(_mm512_reduce_add_epi32(q));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(y[ib].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
        }
        y[ib].d = 1.0f / iscale;
    }
}

// ---- 32-wide weight quants -------------------------------------------------
//
// One block per 256-bit register: on Zen4 512-bit ops are split in two anyway,
// and a two-block layout costs extra cross-lane shuffles (measured slower, as
// was a 16-lane gather of the scales). What AVX-512 adds here is VNNI.

// Sums d_x * d_y * dot(block) over nb blocks whose first field is the f16 scale
// `d`; block_dot(ib) returns the 8 int32 partial sums of block ib.
template <class Wx, class Wy, class BlockDot>
float blocks_loop(int64_t nb, const Wx* x, const Wy* y, BlockDot block_dot) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        const __m256 s = _mm256_mul_ps(load_d8(&x[ib], int(sizeof(Wx))), load_d8(&y[ib], int(sizeof(Wy))));
        for (int k = 0; k < 8; k += 2) {
            acc0 = _mm256_fmadd_ps(lane(s, k), _mm256_cvtepi32_ps(block_dot(ib + k)), acc0);
            acc1 = _mm256_fmadd_ps(lane(s, k + 1), _mm256_cvtepi32_ps(block_dot(ib + k + 1)), acc1);
        }
    }
    for (; ib < nb; ++ib) {
        const __m256 s = _mm256_set1_ps(f16(x[ib].d) * f16(y[ib].d));
        acc0 = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(block_dot(ib)), acc0);
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Offset-coded weights: sum((x - off) * y) = dpbusd(x, y) - dpbusd(off, y).
inline __m256i dot_offset(__m256i x, __m256i y, int8_t off) {
    const __m256i zero = _mm256_setzero_si256();
    return _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, x, y), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(off), y));
}

// Signed x times signed y via VNNI (unsigned x operand): |x| * (y with x's sign).
inline __m256i dot_signed(__m256i x, __m256i y) {
    const __mmask32 neg = _mm256_movepi8_mask(x);
    const __m256i sy = _mm256_mask_sub_epi8(y, neg, _mm256_setzero_si256(), y);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), sy);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) { return dot_offset(nibbles_32(x[ib].qs), load32(y[ib].qs), 8); });
}

float vec_dot_q5_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) {
        // q in [0,31] with the fifth bit from qh; the value is q - 16.
        const __m256i q = _mm256_or_si256(nibbles_32(x[ib].qs), _mm256_and_si256(bits_to_bytes_32(x[ib].qh), bit4));
        return dot_offset(q, load32(y[ib].qs), 16);
    });
}

float vec_dot_q8_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) { return dot_signed(load32(x[ib].qs), load32(y[ib].qs)); });
}

}  // namespace

void fill_avx512(KernelTable* t) {
    slot(t, DType::f32).vec_dot = vec_dot_f32;
    slot(t, DType::f16).vec_dot = vec_dot_f16;
    slot(t, DType::f16).quantize_row = quantize_f16;
    slot(t, DType::bf16).vec_dot = vec_dot_bf16;
    slot(t, DType::bf16).quantize_row = quantize_bf16;
    slot(t, DType::q4_0).vec_dot = vec_dot_q4_0_q8_0;
    slot(t, DType::q5_0).vec_dot = vec_dot_q5_0_q8_0;
    slot(t, DType::q8_0).vec_dot = vec_dot_q8_0_q8_0;
    slot(t, DType::q8_0).quantize_row = quantize_q8_0;
    slot(t, DType::q8_1).quantize_row = quantize_q8_1;
    slot(t, DType::q8_k).quantize_row = quantize_q8_k;
}

}  // namespace llmn::tensor::detail
