// Reference quantizers for the K-quant weight types (Q2_K .. Q6_K).
//
// These are plain round-to-nearest quantizers: per sub-block a scale (and for
// the asymmetric types a min) is chosen from the value range, the scales are
// themselves quantized against one super-block scale, and each value is
// rounded to the nearest level. They do not search for the error-minimising
// scales llama.cpp's quantize tool uses, but they produce valid blocks that
// round-trip with bounded error (tests and the synthetic model generator use them).
#include <cmath>
#include <cstring>

#include "tensor/fp16.h"
#include "tensor/kernels/kernels_impl.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
int round_int(float v) { return int(std::nearbyint(v)); }

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

// Asymmetric sub-block ranges: x ~ scale * q - min with min >= 0 (ggml's
// convention), q in [0, levels]. Fills `scale` and `min` per sub-block.
void asym_ranges(const float* x, int n_sub, int sub, int levels, float* scale, float* min) {
    for (int s = 0; s < n_sub; ++s) {
        float lo = 0.0f, hi = x[s * sub];
        for (int l = 0; l < sub; ++l) {
            lo = std::fmin(lo, x[s * sub + l]);
            hi = std::fmax(hi, x[s * sub + l]);
        }
        scale[s] = (hi - lo) / float(levels);
        min[s] = -lo;
    }
}

// Quantizes n values against one positive super-scale onto [0, top]; returns the
// (f16-rounded) super-scale to store.
float quantize_scales(const float* v, int n, int top, int* out) {
    float vmax = 0.0f;
    for (int j = 0; j < n; ++j) vmax = std::fmax(vmax, v[j]);
    const float d = fp16_to_f32(f32_to_fp16(vmax / float(top)));
    for (int j = 0; j < n; ++j) out[j] = d > 0.0f ? clamp_int(round_int(v[j] / d), 0, top) : 0;
    return d;
}

// Level of x for value = dl * q - ml, clamped to [0, top].
int asym_level(float x, float dl, float ml, int top) {
    return dl > 0.0f ? clamp_int(round_int((x + ml) / dl), 0, top) : 0;
}

// Symmetric signed super-scale: scales ~ d * l with l in [lo, hi], the largest
// magnitude mapped to `lo` (negative), as ggml does. Returns d.
float quantize_signed_scales(const float* v, int n, int lo, int hi, int* out) {
    const float vmax = signed_absmax(v, n);
    if (vmax == 0.0f) {
        for (int j = 0; j < n; ++j) out[j] = 0;
        return 0.0f;
    }
    const float iscale = float(lo) / vmax;
    for (int j = 0; j < n; ++j) out[j] = clamp_int(round_int(iscale * v[j]), lo, hi);
    return fp16_to_f32(f32_to_fp16(1.0f / iscale));
}

// ---- Q2_K ---------------------------------------------------------------

void quantize_q2_k(const float* src, void* dst, int64_t n) {
    BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        float scale[16], min[16];
        int ls[16], lm[16];
        asym_ranges(src, 16, 16, 3, scale, min);
        const float d = quantize_scales(scale, 16, 15, ls);
        const float dmin = quantize_scales(min, 16, 15, lm);
        y[ib].d = f32_to_fp16(d);
        y[ib].dmin = f32_to_fp16(dmin);
        std::memset(y[ib].qs, 0, sizeof y[ib].qs);
        for (int g = 0; g < 16; ++g) {
            y[ib].scales[g] = uint8_t(ls[g] | (lm[g] << 4));
            for (int l = 0; l < 16; ++l) {
                const int e = g * 16 + l;
                const int q = asym_level(src[e], d * float(ls[g]), dmin * float(lm[g]), 3);
                y[ib].qs[(e / 128) * 32 + e % 32] |= uint8_t(q << (2 * ((e % 128) / 32)));
            }
        }
    }
}

// ---- Q3_K ---------------------------------------------------------------

void quantize_q3_k(const float* src, void* dst, int64_t n) {
    BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        float scale[16];
        int ls[16];
        for (int g = 0; g < 16; ++g) scale[g] = signed_absmax(src + 16 * g, 16) / -4.0f;
        const float d = quantize_signed_scales(scale, 16, -32, 31, ls);
        y[ib].d = f32_to_fp16(d);
        std::memset(y[ib].scales, 0, sizeof y[ib].scales);
        std::memset(y[ib].hmask, 0, sizeof y[ib].hmask);
        std::memset(y[ib].qs, 0, sizeof y[ib].qs);
        for (int g = 0; g < 16; ++g) {
            const int stored = ls[g] + 32;
            if (g < 8)
                y[ib].scales[g] = uint8_t(stored & 0xF);
            else
                y[ib].scales[g - 8] |= uint8_t((stored & 0xF) << 4);
            y[ib].scales[8 + g % 4] |= uint8_t((stored >> 4) << (2 * (g / 4)));
            const float dl = d * float(ls[g]);
            for (int l = 0; l < 16; ++l) {
                const int e = g * 16 + l;
                const int q = (dl != 0.0f ? clamp_int(round_int(src[e] / dl), -4, 3) : 0) + 4;
                if (q > 3) y[ib].hmask[e % 32] |= uint8_t(1 << (e / 32));
                y[ib].qs[(e / 128) * 32 + e % 32] |= uint8_t((q & 3) << (2 * ((e % 128) / 32)));
            }
        }
    }
}

// ---- Q4_K / Q5_K ------------------------------------------------------------

// Packs eight 6-bit scales and mins the way k4_scale_min unpacks them.
void pack_k4_scales(const int* ls, const int* lm, uint8_t* q) {
    std::memset(q, 0, kKScaleBytes);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            q[j] = uint8_t(ls[j]);
            q[j + 4] = uint8_t(lm[j]);
        } else {
            q[j + 4] = uint8_t((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            q[j - 4] |= uint8_t((ls[j] >> 4) << 6);
            q[j] |= uint8_t((lm[j] >> 4) << 6);
        }
    }
}

// Shared body: 8 sub-blocks of 32 on [0, top]; writes d, dmin, scales and the
// levels (one per element) for the caller to pack. d16 and dmin16 point into a
// packed block, so they may be misaligned (written through store_at).
void quantize_k4_levels(const float* src, int top, void* d16, void* dmin16, uint8_t* scales, int* levels) {
    float scale[8], min[8];
    int ls[8], lm[8];
    asym_ranges(src, 8, 32, top, scale, min);
    const float d = quantize_scales(scale, 8, 63, ls);
    const float dmin = quantize_scales(min, 8, 63, lm);
    store_at<uint16_t>(d16, 0, f32_to_fp16(d));
    store_at<uint16_t>(dmin16, 0, f32_to_fp16(dmin));
    pack_k4_scales(ls, lm, scales);
    for (int e = 0; e < kQKK; ++e)
        levels[e] = asym_level(src[e], d * float(ls[e / 32]), dmin * float(lm[e / 32]), top);
}

void quantize_q4_k(const float* src, void* dst, int64_t n) {
    BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
    int levels[kQKK];
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        quantize_k4_levels(src, 15, &y[ib].d, &y[ib].dmin, y[ib].scales, levels);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                y[ib].qs[32 * c + l] = uint8_t(levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
    }
}

void quantize_q5_k(const float* src, void* dst, int64_t n) {
    BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
    int levels[kQKK];
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        quantize_k4_levels(src, 31, &y[ib].d, &y[ib].dmin, y[ib].scales, levels);
        std::memset(y[ib].qh, 0, sizeof y[ib].qh);
        for (int e = 0; e < kQKK; ++e)
            if (levels[e] > 15) y[ib].qh[e % 32] |= uint8_t(1 << (e / 32));
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                y[ib].qs[32 * c + l] = uint8_t((levels[64 * c + l] & 0xF) | ((levels[64 * c + 32 + l] & 0xF) << 4));
    }
}

// ---- Q6_K ---------------------------------------------------------------

void quantize_q6_k(const float* src, void* dst, int64_t n) {
    BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
    for (int64_t ib = 0; ib < n / kQKK; ++ib, src += kQKK) {
        float scale[16];
        int ls[16], q[kQKK];
        for (int g = 0; g < 16; ++g) scale[g] = signed_absmax(src + 16 * g, 16) / -32.0f;
        const float d = quantize_signed_scales(scale, 16, -128, 127, ls);
        y[ib].d = f32_to_fp16(d);
        for (int g = 0; g < 16; ++g) {
            y[ib].scales[g] = int8_t(ls[g]);
            const float dl = d * float(ls[g]);
            for (int l = 0; l < 16; ++l)
                q[g * 16 + l] = (dl != 0.0f ? clamp_int(round_int(src[g * 16 + l] / dl), -32, 31) : 0) + 32;
        }
        for (int half = 0; half < 2; ++half) {
            const int* h = q + 128 * half;
            for (int l = 0; l < 32; ++l) {
                y[ib].ql[64 * half + l] = uint8_t((h[l] & 0xF) | ((h[l + 64] & 0xF) << 4));
                y[ib].ql[64 * half + 32 + l] = uint8_t((h[l + 32] & 0xF) | ((h[l + 96] & 0xF) << 4));
                y[ib].qh[32 * half + l] =
                    uint8_t((h[l] >> 4) | ((h[l + 32] >> 4) << 2) | ((h[l + 64] >> 4) << 4) | ((h[l + 96] >> 4) << 6));
            }
        }
    }
}

}  // namespace

void fill_scalar_kquantize(KernelTable* t) {
    slot(t, DType::q2_k).quantize_row = quantize_q2_k;
    slot(t, DType::q3_k).quantize_row = quantize_q3_k;
    slot(t, DType::q4_k).quantize_row = quantize_q4_k;
    slot(t, DType::q5_k).quantize_row = quantize_q5_k;
    slot(t, DType::q6_k).quantize_row = quantize_q6_k;
}

}  // namespace llmn::tensor::detail
