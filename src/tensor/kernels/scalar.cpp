// Scalar reference kernels for F32, F16, BF16 and the 32-wide quants.
//
// Formulas follow ggml's *_ref / *_generic functions so results match
// llama.cpp; the SIMD files are tested against these.
#include <cmath>
#include <cstring>

#include "tensor/fp16.h"
#include "tensor/kernels/kernels_impl.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

// ---- F32 / F16 / BF16 ----------------------------------------------------

void dequantize_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }
void quantize_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }

float vec_dot_f32(int64_t n, const void* row, const void* act) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(load_at<float>(row, i)) * double(load_at<float>(act, i));
    return float(sum);
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(load_at<uint16_t>(src, i));
}
void quantize_f16(const float* src, void* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) store_at<uint16_t>(dst, i, f32_to_fp16(src[i]));
}
float vec_dot_f16(int64_t n, const void* row, const void* act) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
        sum += double(fp16_to_f32(load_at<uint16_t>(row, i)) * fp16_to_f32(load_at<uint16_t>(act, i)));
    return float(sum);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_at<uint16_t>(src, i));
}
void quantize_bf16(const float* src, void* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) store_at<uint16_t>(dst, i, f32_to_bf16(src[i]));
}
float vec_dot_bf16(int64_t n, const void* row, const void* act) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
        sum += double(bf16_to_f32(load_at<uint16_t>(row, i)) * bf16_to_f32(load_at<uint16_t>(act, i)));
    return float(sum);
}

// ---- shared quantizer helpers -----------------------------------------

// The element of largest magnitude, with its sign (ggml's "max" for symmetric quants).
float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

void min_max(const float* x, int n, float* lo, float* hi) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < n; ++j) {
        mn = x[j] < mn ? x[j] : mn;
        mx = x[j] > mx ? x[j] : mx;
    }
    *lo = mn;
    *hi = mx;
}

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// ---- Q4_0 ---------------------------------------------------------------

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = float((x[ib].qs[j] & 0xF) - 8) * d;
            dst[j + kQK / 2] = float((x[ib].qs[j] >> 4) - 8) * d;
        }
    }
}

void quantize_q4_0(const float* src, void* dst, int64_t n) {
    BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) {
        const float d = signed_absmax(src, kQK) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[ib].d = f32_to_fp16(d);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(int(src[j] * id + 8.5f), 0, 15);
            const int q1 = clamp_int(int(src[j + kQK / 2] * id + 8.5f), 0, 15);
            y[ib].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

float vec_dot_q4_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += ((x[ib].qs[j] & 0xF) - 8) * y[ib].qs[j];
            sumi += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + kQK / 2];
        }
        sum += float(sumi) * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d));
    }
    return sum;
}

// ---- Q4_1 ---------------------------------------------------------------

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
    const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d), m = fp16_to_f32(x[ib].m);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = float(x[ib].qs[j] & 0xF) * d + m;
            dst[j + kQK / 2] = float(x[ib].qs[j] >> 4) * d + m;
        }
    }
}

void quantize_q4_1(const float* src, void* dst, int64_t n) {
    BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) {
        float lo, hi;
        min_max(src, kQK, &lo, &hi);
        const float d = (hi - lo) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[ib].d = f32_to_fp16(d);
        y[ib].m = f32_to_fp16(lo);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(int((src[j] - lo) * id + 0.5f), 0, 15);
            const int q1 = clamp_int(int((src[j + kQK / 2] - lo) * id + 0.5f), 0, 15);
            y[ib].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

float vec_dot_q4_1_q8_1(int64_t n, const void* row, const void* act) {
    const BlockQ4_1* x = static_cast<const BlockQ4_1*>(row);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += (x[ib].qs[j] & 0xF) * y[ib].qs[j];
            sumi += (x[ib].qs[j] >> 4) * y[ib].qs[j + kQK / 2];
        }
        sum += float(sumi) * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d)) +
               fp16_to_f32(x[ib].m) * fp16_to_f32(y[ib].s);
    }
    return sum;
}

// ---- Q5_0 / Q5_1 ----------------------------------------------------------

// Fifth bits of elements j (low nibble) and j + 16 (high nibble), as 0 or 16.
inline int q5_high(uint32_t qh, int j) { return int(((qh >> j) << 4) & 0x10); }

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d);
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = float(((x[ib].qs[j] & 0xF) | q5_high(qh, j)) - 16) * d;
            dst[j + kQK / 2] = float(((x[ib].qs[j] >> 4) | q5_high(qh, j + 16)) - 16) * d;
        }
    }
}

void quantize_q5_0(const float* src, void* dst, int64_t n) {
    BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) {
        const float d = signed_absmax(src, kQK) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[ib].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(int(src[j] * id + 16.5f), 0, 31);
            const int q1 = clamp_int(int(src[j + kQK / 2] * id + 16.5f), 0, 31);
            y[ib].qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= uint32_t(q0 >> 4) << j;
            qh |= uint32_t(q1 >> 4) << (j + kQK / 2);
        }
        std::memcpy(y[ib].qh, &qh, sizeof qh);
    }
}

float vec_dot_q5_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += (((x[ib].qs[j] & 0xF) | q5_high(qh, j)) - 16) * y[ib].qs[j];
            sumi += (((x[ib].qs[j] >> 4) | q5_high(qh, j + 16)) - 16) * y[ib].qs[j + kQK / 2];
        }
        sum += float(sumi) * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d));
    }
    return sum;
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
    const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d), m = fp16_to_f32(x[ib].m);
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        for (int j = 0; j < kQK / 2; ++j) {
            dst[j] = float((x[ib].qs[j] & 0xF) | q5_high(qh, j)) * d + m;
            dst[j + kQK / 2] = float((x[ib].qs[j] >> 4) | q5_high(qh, j + 16)) * d + m;
        }
    }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
    BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) {
        float lo, hi;
        min_max(src, kQK, &lo, &hi);
        const float d = (hi - lo) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[ib].d = f32_to_fp16(d);
        y[ib].m = f32_to_fp16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = clamp_int(int((src[j] - lo) * id + 0.5f), 0, 31);
            const int q1 = clamp_int(int((src[j + kQK / 2] - lo) * id + 0.5f), 0, 31);
            y[ib].qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= uint32_t(q0 >> 4) << j;
            qh |= uint32_t(q1 >> 4) << (j + kQK / 2);
        }
        std::memcpy(y[ib].qh, &qh, sizeof qh);
    }
}

float vec_dot_q5_1_q8_1(int64_t n, const void* row, const void* act) {
    const BlockQ5_1* x = static_cast<const BlockQ5_1*>(row);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += ((x[ib].qs[j] & 0xF) | q5_high(qh, j)) * y[ib].qs[j];
            sumi += ((x[ib].qs[j] >> 4) | q5_high(qh, j + 16)) * y[ib].qs[j + kQK / 2];
        }
        sum += float(sumi) * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d)) +
               fp16_to_f32(x[ib].m) * fp16_to_f32(y[ib].s);
    }
    return sum;
}

// ---- Q8_0 / Q8_1 ----------------------------------------------------------

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d);
        for (int j = 0; j < kQK; ++j) dst[j] = float(x[ib].qs[j]) * d;
    }
}

// Symmetric 8-bit block: d = amax / 127, q = round-half-even(x / d). The SIMD
// quantizers round the same way, so all ISAs produce identical bytes.
float quantize_block_q8(const float* x, int8_t* qs) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) qs[j] = int8_t(std::nearbyint(x[j] * id));
    return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
    BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) y[ib].d = f32_to_fp16(quantize_block_q8(src, y[ib].qs));
}

float vec_dot_q8_0_q8_0(int64_t n, const void* row, const void* act) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(row);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(act);
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / kQK; ++ib) {
        int sumi = 0;
        for (int j = 0; j < kQK; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
        sum += float(sumi) * (fp16_to_f32(x[ib].d) * fp16_to_f32(y[ib].d));
    }
    return sum;
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
    const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
    for (int64_t ib = 0; ib < n / kQK; ++ib, dst += kQK) {
        const float d = fp16_to_f32(x[ib].d);
        for (int j = 0; j < kQK; ++j) dst[j] = float(x[ib].qs[j]) * d;
    }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
    BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
    for (int64_t ib = 0; ib < n / kQK; ++ib, src += kQK) {
        const float d = quantize_block_q8(src, y[ib].qs);
        int sum = 0;
        for (int j = 0; j < kQK; ++j) sum += y[ib].qs[j];
        y[ib].d = f32_to_fp16(d);
        y[ib].s = f32_to_fp16(float(sum) * d);
    }
}

}  // namespace

void fill_scalar_basic(KernelTable* t) {
    slot(t, DType::f32) = {DType::f32, dequantize_f32, quantize_f32, vec_dot_f32};
    slot(t, DType::f16) = {DType::f16, dequantize_f16, quantize_f16, vec_dot_f16};
    slot(t, DType::bf16) = {DType::bf16, dequantize_bf16, quantize_bf16, vec_dot_bf16};
    slot(t, DType::q4_0) = {DType::q8_0, dequantize_q4_0, quantize_q4_0, vec_dot_q4_0_q8_0};
    slot(t, DType::q4_1) = {DType::q8_1, dequantize_q4_1, quantize_q4_1, vec_dot_q4_1_q8_1};
    slot(t, DType::q5_0) = {DType::q8_0, dequantize_q5_0, quantize_q5_0, vec_dot_q5_0_q8_0};
    slot(t, DType::q5_1) = {DType::q8_1, dequantize_q5_1, quantize_q5_1, vec_dot_q5_1_q8_1};
    slot(t, DType::q8_0) = {DType::q8_0, dequantize_q8_0, quantize_q8_0, vec_dot_q8_0_q8_0};
    // Q8_1 is an activation type: it converts and expands but has no dot of its own.
    slot(t, DType::q8_1) = {DType::q8_1, dequantize_q8_1, quantize_q8_1, nullptr};
}

}  // namespace llmn::tensor::detail
