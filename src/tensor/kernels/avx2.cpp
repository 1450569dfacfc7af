// AVX2 + FMA + F16C kernels. Built with -mavx2 -mfma -mf16c; only called when
// the CPU and OS support them. Each kernel mirrors its scalar reference in
// scalar*.cpp (same integer block sums; only the float summation order differs).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "tensor/kernels/kernels_impl.h"
#include "tensor/kernels/simd_common.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

using namespace simd;

// ---- F32 / F16 / BF16 ------------------------------------------------------

float vec_dot_f32(int64_t n, const void* row, const void* act) {
    const float* x = static_cast<const float*>(row);
    const float* y = static_cast<const float*>(act);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; ++k)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc[0]);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) sum += load_at<float>(x, i) * load_at<float>(y, i);
    return sum;
}

inline __m256 load_f16x8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load_bf16x8(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
float vec_dot_half(int64_t n, const void* row, const void* act) {
    const uint16_t* x = static_cast<const uint16_t*>(row);
    const uint16_t* y = static_cast<const uint16_t*>(act);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(Load(x + i + 8 * k), Load(y + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(Load(x + i), Load(y + i), acc[0]);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) sum += Scalar(load_at<uint16_t>(x, i)) * Scalar(load_at<uint16_t>(y, i));
    return sum;
}

float bf16_scalar(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

void quantize_f16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) store_at<uint16_t>(y, i, to_f16(src[i]));
}

// ---- Q8_0 / Q8_1 activations -------------------------------------------------

// Quantizes 32 floats like the scalar quantize_block_q8; returns d, and the sum
// of the quantized values in *sum.
float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float d = hmax_abs(amax) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
        q[k] = _mm256_cvtps_epi32(
            _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    // packs works per 128-bit lane: restore element order with one permute.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    const __m256i ordered = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), ordered);
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

// ---- 32-wide weight quants ----------------------------------------------------

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Sums d_x * d_y * dot(block) over nb blocks whose first field is the f16 scale
// `d`; block_dot(ib) returns the 8 int32 partial sums of block ib. Scales are
// converted 8 blocks at a time.
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

float vec_dot_q4_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    const __m256i eight = _mm256_set1_epi8(8);
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) {
        return dot_i8_i8(_mm256_sub_epi8(nibbles_32(x[ib].qs), eight), load32(y[ib].qs));
    });
}

float vec_dot_q8_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) { return dot_i8_i8(load32(x[ib].qs), load32(y[ib].qs)); });
}

float vec_dot_q5_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    const __m256i high = _mm256_set1_epi8(int8_t(0xF0));
    return blocks_loop(n / kQK, x, y, [&](int64_t ib) {
        // Without its fifth bit a value is q - 16, i.e. q | 0xF0 as int8.
        const __m256i q = _mm256_or_si256(nibbles_32(x[ib].qs), _mm256_andnot_si256(bits_to_bytes_32(x[ib].qh), high));
        return dot_i8_i8(q, load32(y[ib].qs));
    });
}

float vec_dot_q4_1_q8_1(int64_t n, const void* row, const void* act) {
    const BlockQ4_1* x = static_cast<const BlockQ4_1*>(row);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(act);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        const __m256 d = _mm256_set1_ps(f16(x[ib].d) * f16(y[ib].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(nibbles_32(x[ib].qs), load32(y[ib].qs))), acc);
        mins += f16(x[ib].m) * f16(y[ib].s);
    }
    return hsum(acc) + mins;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* row, const void* act) {
    const BlockQ5_1* x = static_cast<const BlockQ5_1*>(row);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(act);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        const __m256i q = _mm256_or_si256(nibbles_32(x[ib].qs), _mm256_and_si256(bits_to_bytes_32(x[ib].qh), bit4));
        const __m256 d = _mm256_set1_ps(f16(x[ib].d) * f16(y[ib].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(q, load32(y[ib].qs))), acc);
        mins += f16(x[ib].m) * f16(y[ib].s);
    }
    return hsum(acc) + mins;
}

// ---- K-quants -------------------------------------------------------------

// sum over sub-blocks of min[sb] * (bsums[2sb] + bsums[2sb+1]), as 4 int32 lanes.
inline __m128i k4_min_products(const int16_t* bsums, __m128i mins16) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    return _mm_madd_epi16(mins16, pairs);
}

// Q4_K and Q5_K share everything but where the fifth bit comes from.
template <bool kFiveBit, class Block>
float vec_dot_k4(int64_t n, const Block* x, const BlockQ8_K* y) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        const float d = y[ib].d * f16(x[ib].d);
        const float dmin = -y[ib].d * f16(x[ib].dmin);
        uint32_t sm[4];
        unpack_k4_scales(x[ib].scales, sm);
        const __m256i scales_mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sm)));
        const __m128i prod = k4_min_products(y[ib].bsums, _mm256_extracti128_si256(scales_mins, 1));
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
        const __m128i sc128 = _mm256_castsi256_si128(scales_mins);
        const __m256i scales = _mm256_set_m128i(sc128, sc128);

        const uint8_t* q4 = x[ib].qs;
        const int8_t* q8 = y[ib].qs;
        __m256i hbits = _mm256_setzero_si256();
        if constexpr (kFiveBit) hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qh));
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j, q4 += 32, q8 += 64) {
            const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4));
            __m256i lo = _mm256_and_si256(bits, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
            if constexpr (kFiveBit) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hbits, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), one), 4));
                hbits = _mm256_srli_epi16(hbits, 2);
            }
            const __m256i pl = _mm256_maddubs_epi16(lo, load32(q8));
            const __m256i ph = _mm256_maddubs_epi16(hi, load32(q8 + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(broadcast_i16(scales, 2 * j), pl));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(broadcast_i16(scales, 2 * j + 1), ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc) + hsum(acc_m);
}

float vec_dot_q4_k_q8_k(int64_t n, const void* row, const void* act) {
    return vec_dot_k4<false>(n, static_cast<const BlockQ4_K*>(row), static_cast<const BlockQ8_K*>(act));
}
float vec_dot_q5_k_q8_k(int64_t n, const void* row, const void* act) {
    return vec_dot_k4<true>(n, static_cast<const BlockQ5_K*>(row), static_cast<const BlockQ8_K*>(act));
}

float vec_dot_q6_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        const float d = y[ib].d * f16(x[ib].d);
        const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[ib].scales));
        const uint8_t* ql = x[ib].ql;
        const uint8_t* qh = x[ib].qh;
        const int8_t* q8 = y[ib].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32) {
            const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x03)), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x0C)), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                   _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                   _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(int8_t(0xC0))), 2));
            for (int k = 0; k < 4; ++k, q8 += 32) {
                const __m256i y8 = load32(q8);
                // (q - 32) * y = q * y - 32 * y, both within int16.
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y8), _mm256_maddubs_epi16(m32, y8));
                // Scales of groups g and g + 1 (16 elements each), widened to int16.
                const int g = half * 8 + 2 * k;
                const __m128i pick = _mm_set_epi64x(0x0101010101010101LL * (g + 1), 0x0101010101010101LL * g);
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

// ---- Q8_K activations -------------------------------------------------------

void quantize_q8_k(const float* src, void* dst, int64_t n) {
    BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        __m256 amax_v = _mm256_setzero_ps();
        for (int j = 0; j < kQKK; j += 8) amax_v = _mm256_max_ps(amax_v, _mm256_andnot_ps(sign, _mm256_loadu_ps(src + j)));
        const float amax = hmax_abs(amax_v);
        if (amax == 0.0f) {
            std::memset(&y[ib], 0, sizeof y[ib]);
            continue;
        }
        // The first element of largest magnitude decides the sign, as in the scalar code.
        int first = 0;
        for (int j = 0; j < kQKK; j += 8) {
            const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(src + j));
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (mask) {
                first = j + __builtin_ctz(unsigned(mask));
                break;
            }
        }
        const float iscale = -127.0f / src[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127);
        for (int g = 0; g < kQKK / 32; ++g) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                const __m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(src + 32 * g + 8 * k));
                q[k] = _mm256_min_epi32(
                    _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), top);
            }
            y[ib].bsums[2 * g] = int16_t(hsum_i32(_mm256_add_epi32(q[0], q[1])));
            y[ib].bsums[2 * g + 1] = int16_t(hsum_i32(_mm256_add_epi32(q[2], q[3])));
            const __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[ib].qs + 32 * g),
                                _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
        y[ib].d = 1.0f / iscale;
    }
}

}  // namespace

void fill_avx2(KernelTable* t) {
    slot(t, DType::f32).vec_dot = vec_dot_f32;
    slot(t, DType::f16).vec_dot = vec_dot_half<load_f16x8, f16>;
    slot(t, DType::f16).quantize_row = quantize_f16;
    slot(t, DType::bf16).vec_dot = vec_dot_half<load_bf16x8, bf16_scalar>;
    slot(t, DType::q4_0).vec_dot = vec_dot_q4_0_q8_0;
    slot(t, DType::q4_1).vec_dot = vec_dot_q4_1_q8_1;
    slot(t, DType::q5_0).vec_dot = vec_dot_q5_0_q8_0;
    slot(t, DType::q5_1).vec_dot = vec_dot_q5_1_q8_1;
    slot(t, DType::q8_0).vec_dot = vec_dot_q8_0_q8_0;
    slot(t, DType::q8_0).quantize_row = quantize_q8_0;
    slot(t, DType::q8_1).quantize_row = quantize_q8_1;
    slot(t, DType::q4_k).vec_dot = vec_dot_q4_k_q8_k;
    slot(t, DType::q5_k).vec_dot = vec_dot_q5_k_q8_k;
    slot(t, DType::q6_k).vec_dot = vec_dot_q6_k_q8_k;
    slot(t, DType::q8_k).quantize_row = quantize_q8_k;
}

}  // namespace llmn::tensor::detail
