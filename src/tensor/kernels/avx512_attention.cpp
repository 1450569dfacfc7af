// AVX-512 causal attention over an f16 K/V cache (tensor/attention.h).
//
// Blocks of up to 16 queries put one query in each lane: the queries are
// transposed once (qt[i] = element i of the 16 queries), a key row is
// converted to f32 once and each of its values broadcast against qt[i], so the
// scores of 16 queries for one key are one register and softmax runs down the
// keys with no horizontal sums; the values are applied the same way. One or
// few queries (decode) go row by row with F16C conversions.
// Built with the AVX-512 flags in src/tensor/CMakeLists.txt.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/kernels/kernels_impl.h"

namespace llmn::tensor::detail {
namespace {

constexpr int kLanes = 16;
// Fewer queries than this use the row-by-row path.
constexpr int kMinLaneQueries = 4;
// Key rows handled together in the score loop, and value rows converted per chunk.
constexpr int kKeyRows = 8;
constexpr int kValueChunk = 64;

inline __mmask16 tail16(int left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

// exp(x) to ~1 ulp: 2^n * e^r with |r| <= ln2/2 (degree-7 Taylor), via scalef;
// x below -104 gives 0 (also for -inf).
inline __m512 exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

inline __m512 load_f16(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

// n f16 values -> f32.
inline void convert_row(const uint16_t* src, int n, float* dst) {
    for (int i = 0; i < n; i += kLanes) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load_f16(src + i, m));
    }
}

// ---- one query at a time ------------------------------------------------------

void attend_rows(const float* q, int n_kv, const uint16_t* k, size_t ks, const uint16_t* v, size_t vs, int hd, int hdv,
                 float scale, float* out) {
    thread_local std::vector<float> scores;
    if (scores.size() < size_t(n_kv) + kLanes) scores.resize(size_t(n_kv) + kLanes);
    float* s = scores.data();
    for (int j = 0; j < n_kv; ++j) {
        const uint16_t* kj = k + size_t(j) * ks;
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += kLanes) {
            const __mmask16 m = tail16(hd - i);
            acc = _mm512_fmadd_ps(load_f16(kj + i, m), _mm512_maskz_loadu_ps(m, q + i), acc);
        }
        s[j] = _mm512_reduce_add_ps(acc) * scale;
    }
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n_kv; j += kLanes) mx = _mm512_max_ps(mx, _mm512_maskz_loadu_ps(tail16(n_kv - j), s + j));
    const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n_kv; j += kLanes) {
        const __mmask16 m = tail16(n_kv - j);
        const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), vmax)));
        _mm512_storeu_ps(s + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    const float inv = 1.0f / _mm512_reduce_add_ps(sum);
    // Four registers of the output at a time, all keys each.
    for (int i0 = 0; i0 < hdv; i0 += 4 * kLanes) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        __mmask16 m[4];
        for (int c = 0; c < 4; ++c) m[c] = i0 + c * kLanes < hdv ? tail16(hdv - i0 - c * kLanes) : __mmask16(0);
        for (int j = 0; j < n_kv; ++j) {
            const uint16_t* vj = v + size_t(j) * vs + i0;
            const __m512 p = _mm512_set1_ps(s[j]);
            for (int c = 0; c < 4; ++c)
                if (m[c]) acc[c] = _mm512_fmadd_ps(p, load_f16(vj + c * kLanes, m[c]), acc[c]);
        }
        for (int c = 0; c < 4; ++c)
            if (m[c]) _mm512_mask_storeu_ps(out + i0 + c * kLanes, m[c], _mm512_mul_ps(acc[c], _mm512_set1_ps(inv)));
    }
}

// ---- up to 16 queries, one per lane ----------------------------------------

// s[j] += sum_i qt[i] * kf[r][i] for R key rows; qt has hd registers.
template <int R>
inline void score_rows(const float* qt, const float* kf, int hd, __m512* s) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < hd; ++i) {
        const __m512 qi = _mm512_loadu_ps(qt + i * kLanes);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(qi, _mm512_set1_ps(kf[r * hd + i]), acc[r]);
    }
    for (int r = 0; r < R; ++r) s[r] = acc[r];
}

// ot[i] += sum_j p[j] * vf[j][i] for C consecutive i starting at i0, j < nj.
template <int C>
inline void apply_values(const float* p, const float* vf, int nj, int hdv, int i0, float* ot) {
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_loadu_ps(ot + (i0 + c) * kLanes);
    for (int j = 0; j < nj; ++j) {
        const __m512 pj = _mm512_loadu_ps(p + j * kLanes);
        const float* row = vf + size_t(j) * hdv + i0;
        for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(pj, _mm512_set1_ps(row[c]), acc[c]);
    }
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(ot + (i0 + c) * kLanes, acc[c]);
}

// Queries 0 .. nq-1 (nq <= 16) at positions pos0 .. pos0 + nq - 1.
void attend_lanes(const float* q, size_t qs, int nq, int pos0, const uint16_t* k, size_t ks, const uint16_t* v,
                  size_t vs, int hd, int hdv, float scale, float* out, size_t os) {
    const int n_kv = pos0 + nq;
    thread_local std::vector<float> qt, ot, probs, kf, vf;
    qt.assign(size_t(hd) * kLanes, 0.0f);
    ot.assign(size_t(hdv) * kLanes, 0.0f);
    if (probs.size() < size_t(n_kv) * kLanes) probs.resize(size_t(n_kv) * kLanes);
    kf.resize(size_t(kKeyRows) * hd);
    vf.resize(size_t(kValueChunk) * hdv);
    for (int l = 0; l < nq; ++l)
        for (int i = 0; i < hd; ++i) qt[size_t(i) * kLanes + l] = q[size_t(l) * qs + i] * scale;

    // Scores: key j is visible to lane l when j <= pos0 + l.
    float* p = probs.data();
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n_kv; j0 += kKeyRows) {
        const int nr = std::min(kKeyRows, n_kv - j0);
        for (int r = 0; r < nr; ++r) convert_row(k + size_t(j0 + r) * ks, hd, kf.data() + size_t(r) * hd);
        __m512 s[kKeyRows];
        if (nr == kKeyRows) {
            score_rows<kKeyRows>(qt.data(), kf.data(), hd, s);
        } else {
            for (int r = 0; r < nr; ++r) score_rows<1>(qt.data(), kf.data() + size_t(r) * hd, hd, s + r);
        }
        for (int r = 0; r < nr; ++r) {
            const int hidden = std::max(0, j0 + r - pos0);  // lanes below this cannot see key j0 + r
            const __mmask16 visible = __mmask16(0xFFFFu << std::min(hidden, 16));
            const __m512 sr = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), visible, s[r]);
            mx = _mm512_max_ps(mx, sr);
            _mm512_storeu_ps(p + size_t(j0 + r) * kLanes, sr);
        }
    }
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n_kv; ++j) {
        const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(p + size_t(j) * kLanes), mx));
        _mm512_storeu_ps(p + size_t(j) * kLanes, e);
        sum = _mm512_add_ps(sum, e);
    }

    // Values, a chunk of rows converted at a time.
    for (int j0 = 0; j0 < n_kv; j0 += kValueChunk) {
        const int nj = std::min(kValueChunk, n_kv - j0);
        for (int j = 0; j < nj; ++j) convert_row(v + size_t(j0 + j) * vs, hdv, vf.data() + size_t(j) * hdv);
        const float* pj = p + size_t(j0) * kLanes;
        int i = 0;
        for (; i + 8 <= hdv; i += 8) apply_values<8>(pj, vf.data(), nj, hdv, i, ot.data());
        for (; i < hdv; ++i) apply_values<1>(pj, vf.data(), nj, hdv, i, ot.data());
    }
    alignas(64) float col[kLanes];
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    for (int i = 0; i < hdv; ++i) {
        _mm512_store_ps(col, _mm512_mul_ps(_mm512_loadu_ps(ot.data() + size_t(i) * kLanes), inv));
        for (int l = 0; l < nq; ++l) out[size_t(l) * os + i] = col[l];
    }
}

}  // namespace

void attention_f16_avx512(const float* q, size_t q_stride, int n_q, int pos0, const uint16_t* k, size_t k_stride,
                          const uint16_t* v, size_t v_stride, int hd, int hdv, float scale, float* out,
                          size_t out_stride) {
    int iq = 0;
    for (; n_q - iq >= kMinLaneQueries; iq += kLanes) {
        const int nq = std::min(kLanes, n_q - iq);
        attend_lanes(q + size_t(iq) * q_stride, q_stride, nq, pos0 + iq, k, k_stride, v, v_stride, hd, hdv, scale,
                     out + size_t(iq) * out_stride, out_stride);
    }
    for (; iq < n_q; ++iq)
        attend_rows(q + size_t(iq) * q_stride, pos0 + iq + 1, k, k_stride, v, v_stride, hd, hdv, scale,
                    out + size_t(iq) * out_stride);
}

}  // namespace llmn::tensor::detail
