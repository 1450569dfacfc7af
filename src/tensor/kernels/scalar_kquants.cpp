// Scalar reference kernels for the K-quants (Q2_K .. Q6_K) and Q8_K.
//
// Dequantization and the integer dot products follow ggml's
// dequantize_row_q*_K and ggml_vec_dot_q*_K_q8_K generic code.
#include <cmath>
#include <cstring>

#include "tensor/fp16.h"
#include "tensor/kernels/kernels_impl.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

// The 16 signed 6-bit scales of a Q3_K block (stored value - 32).
void q3_k_scales(const uint8_t* packed, int8_t* out) {
    for (int j = 0; j < 16; ++j) {
        const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
        const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = int8_t((low | (high << 4)) - 32);
    }
}

// ---- Q2_K ---------------------------------------------------------------

void dequantize_q2_k(const void* src, float* dst, int64_t n) {
    const BlockQ2_K* x = static_cast<const BlockQ2_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        const float d = fp16_to_f32(x[ib].d), dmin = fp16_to_f32(x[ib].dmin);
        const uint8_t* q = x[ib].qs;
        int is = 0;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {
                    const uint8_t sc = x[ib].scales[is++];
                    const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
                    for (int l = 0; l < 16; ++l) *dst++ = dl * float((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

float vec_dot_q2_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ2_K* x = static_cast<const BlockQ2_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[ib].bsums[j] * (x[ib].scales[j] >> 4);
        const uint8_t* q2 = x[ib].qs;
        const int8_t* q8 = y[ib].qs;
        int isum = 0, is = 0;
        for (int half = 0; half < 2; ++half, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part, q8 += 16) {
                    int s = 0;
                    for (int l = 0; l < 16; ++l) s += q8[l] * ((q2[l + 16 * part] >> shift) & 3);
                    isum += (x[ib].scales[is++] & 0xF) * s;
                }
            }
        }
        const float dall = y[ib].d * fp16_to_f32(x[ib].d);
        const float dmin = y[ib].d * fp16_to_f32(x[ib].dmin);
        sum += dall * float(isum) - dmin * float(summs);
    }
    return sum;
}

// ---- Q3_K ---------------------------------------------------------------

// Signed value of element e (0..255) of a Q3_K block, in [-4,3].
inline int q3_value(const BlockQ3_K& b, int e) {
    const int low = (b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const bool high = b.hmask[e % 32] & (1 << (e / 32));
    return low - (high ? 0 : 4);
}

void dequantize_q3_k(const void* src, float* dst, int64_t n) {
    const BlockQ3_K* x = static_cast<const BlockQ3_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, dst += kQKK) {
        const float d = fp16_to_f32(x[ib].d);
        int8_t sc[16];
        q3_k_scales(x[ib].scales, sc);
        for (int e = 0; e < kQKK; ++e) dst[e] = d * float(sc[e / 16]) * float(q3_value(x[ib], e));
    }
}

float vec_dot_q3_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ3_K* x = static_cast<const BlockQ3_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        int8_t sc[16];
        q3_k_scales(x[ib].scales, sc);
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += q3_value(x[ib], g * 16 + l) * y[ib].qs[g * 16 + l];
            isum += sc[g] * s;
        }
        sum += fp16_to_f32(x[ib].d) * y[ib].d * float(isum);
    }
    return sum;
}

// ---- Q4_K / Q5_K ------------------------------------------------------------

// Element e of a Q4_K/Q5_K block: 64-element chunk e/64 holds sub-block 2c in
// the low nibbles of qs[32c..32c+31] and sub-block 2c+1 in the high nibbles.
inline int q4_k_nibble(const uint8_t* qs, int e) {
    const uint8_t b = qs[(e / 64) * 32 + e % 32];
    return (e % 64) < 32 ? (b & 0xF) : (b >> 4);
}
inline int q5_k_value(const BlockQ5_K& b, int e) {
    return q4_k_nibble(b.qs, e) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}

void dequantize_q4_k(const void* src, float* dst, int64_t n) {
    const BlockQ4_K* x = static_cast<const BlockQ4_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, dst += kQKK) {
        const float d = fp16_to_f32(x[ib].d), dmin = fp16_to_f32(x[ib].dmin);
        for (int sb = 0; sb < 8; ++sb) {
            uint8_t sc, m;
            k4_scale_min(sb, x[ib].scales, &sc, &m);
            const float dl = d * float(sc), ml = dmin * float(m);
            for (int l = 0; l < 32; ++l) dst[sb * 32 + l] = dl * float(q4_k_nibble(x[ib].qs, sb * 32 + l)) - ml;
        }
    }
}

void dequantize_q5_k(const void* src, float* dst, int64_t n) {
    const BlockQ5_K* x = static_cast<const BlockQ5_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, dst += kQKK) {
        const float d = fp16_to_f32(x[ib].d), dmin = fp16_to_f32(x[ib].dmin);
        for (int sb = 0; sb < 8; ++sb) {
            uint8_t sc, m;
            k4_scale_min(sb, x[ib].scales, &sc, &m);
            const float dl = d * float(sc), ml = dmin * float(m);
            for (int l = 0; l < 32; ++l) dst[sb * 32 + l] = dl * float(q5_k_value(x[ib], sb * 32 + l)) - ml;
        }
    }
}

// Shared tail of the Q4_K/Q5_K dots: sum(sc * sum(q*q8)) and sum(m * bsums).
template <class ValueFn>
float dot_k4_block(const uint8_t* scales, uint16_t d16, uint16_t dmin16, const BlockQ8_K& y, ValueFn value) {
    int isum = 0, imin = 0;
    for (int sb = 0; sb < 8; ++sb) {
        uint8_t sc, m;
        k4_scale_min(sb, scales, &sc, &m);
        int s = 0;
        for (int l = 0; l < 32; ++l) s += value(sb * 32 + l) * y.qs[sb * 32 + l];
        isum += sc * s;
        imin += m * (y.bsums[2 * sb] + y.bsums[2 * sb + 1]);
    }
    return fp16_to_f32(d16) * y.d * float(isum) - fp16_to_f32(dmin16) * y.d * float(imin);
}

float vec_dot_q4_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ4_K* x = static_cast<const BlockQ4_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        const BlockQ4_K& b = x[ib];
        sum += dot_k4_block(b.scales, b.d, b.dmin, y[ib], [&](int e) { return q4_k_nibble(b.qs, e); });
    }
    return sum;
}

float vec_dot_q5_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ5_K* x = static_cast<const BlockQ5_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        const BlockQ5_K& b = x[ib];
        sum += dot_k4_block(b.scales, b.d, b.dmin, y[ib], [&](int e) { return q5_k_value(b, e); });
    }
    return sum;
}

// ---- Q6_K ---------------------------------------------------------------

// Signed value of element e of a Q6_K block, in [-32,31]. In each half of 128,
// quarter k (32 elements) takes the low (k < 2) or high nibble of
// ql[64*half + 32*(k&1) + l] and bits 2k..2k+1 of qh[32*half + l].
inline int q6_value(const BlockQ6_K& b, int e) {
    const int half = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t lb = b.ql[half * 64 + (k & 1) * 32 + l];
    const int low = k < 2 ? (lb & 0xF) : (lb >> 4);
    const int high = (b.qh[half * 32 + l] >> (2 * k)) & 3;
    return (low | (high << 4)) - 32;
}

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, dst += kQKK) {
        const float d = fp16_to_f32(x[ib].d);
        for (int e = 0; e < kQKK; ++e) dst[e] = d * float(x[ib].scales[e / 16]) * float(q6_value(x[ib], e));
    }
}

float vec_dot_q6_k_q8_k(int64_t n, const void* row, const void* act) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(row);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQKK; ++ib) {
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += q6_value(x[ib], g * 16 + l) * y[ib].qs[g * 16 + l];
            isum += x[ib].scales[g] * s;
        }
        sum += fp16_to_f32(x[ib].d) * y[ib].d * float(isum);
    }
    return sum;
}

// ---- Q8_K ---------------------------------------------------------------

void dequantize_q8_k(const void* src, float* dst, int64_t n) {
    const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, dst += kQKK)
        for (int j = 0; j < kQKK; ++j) dst[j] = x[ib].d * float(x[ib].qs[j]);
}

// ggml's quantize_row_q8_K_ref: scale by -127 / (signed largest value), so that
// value lands on -127, round to nearest even, and clamp at 127.
void quantize_q8_k(const float* src, void* dst, int64_t n) {
    BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQKK; ++j) {
            if (std::fabs(src[j]) > amax) {
                amax = std::fabs(src[j]);
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            std::memset(&y[ib], 0, sizeof y[ib]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < kQKK; ++j) {
            const int v = int(std::nearbyint(iscale * src[j]));
            y[ib].qs[j] = int8_t(v > 127 ? 127 : v);
        }
        for (int g = 0; g < kQKK / 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += y[ib].qs[g * 16 + l];
            y[ib].bsums[g] = int16_t(s);
        }
        y[ib].d = 1.0f / iscale;
    }
}

}  // namespace

void fill_scalar_kquants(KernelTable* t) {
    slot(t, DType::q2_k) = {DType::q8_k, dequantize_q2_k, nullptr, vec_dot_q2_k_q8_k};
    slot(t, DType::q3_k) = {DType::q8_k, dequantize_q3_k, nullptr, vec_dot_q3_k_q8_k};
    slot(t, DType::q4_k) = {DType::q8_k, dequantize_q4_k, nullptr, vec_dot_q4_k_q8_k};
    slot(t, DType::q5_k) = {DType::q8_k, dequantize_q5_k, nullptr, vec_dot_q5_k_q8_k};
    slot(t, DType::q6_k) = {DType::q8_k, dequantize_q6_k, nullptr, vec_dot_q6_k_q8_k};
    // Q8_K is an activation type: it converts and expands but has no dot of its own.
    slot(t, DType::q8_k) = {DType::q8_k, dequantize_q8_k, quantize_q8_k, nullptr};
}

}  // namespace llmn::tensor::detail
