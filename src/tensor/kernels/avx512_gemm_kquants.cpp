// AVX-512 gemm (KernelTable::gemm) for Q4_K and Q6_K weights x Q8_K activations.
//
// Prompts (>= kLaneMinTokens tokens): 16 tokens per register, as the Q4_0 lane
// kernel in avx512_gemm.cpp. The Q8_K activations of 16 tokens are interleaved
// once per call so that 4-byte group g of a block is one 64-byte row (token j
// in lane j); the weights are unpacked to unsigned bytes (Q4_K nibbles 0..15,
// Q6_K values 0..63) and each 4-byte group is broadcast, so one dpbusd does 64
// multiply-adds for 16 tokens. Per sub-block the int32 sums are scaled by the
// sub-block's integer scale (mullo); the second term (Q4_K mins, Q6_K's -32
// offset times its scales) comes from the Q8_K bsums with one dpwssd per pair
// of 16-element bsums. Fewer tokens: the existing vec_dot, row by row.
// Results equal the scalar vec_dot up to float summation order.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/kernels/kernels_impl.h"
#include "tensor/kernels/simd_common.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

using namespace simd;

constexpr int kLanes = 16;
constexpr int64_t kLaneMinTokens = 8;
constexpr int kTileRows = 4;
// Per block: 64 groups x 64 bytes of int8, 16 d_y floats, 8 x 16 int32 bsum pairs.
constexpr size_t kQsBytes = 64 * 64;
constexpr size_t kDyOffset = kQsBytes;
constexpr size_t kBsOffset = kDyOffset + 64;
constexpr size_t kLaneBlockBytes = kBsOffset + 8 * 64;

using VecDot = float (*)(int64_t, const void*, const void*);
// The table's vec_dot for each type, taken when the table is filled (used for
// the few-token calls).
VecDot g_dot_q4_k = nullptr;
VecDot g_dot_q6_k = nullptr;

// Pair p of lane j: int16 bsums[2p] (low half) and bsums[2p + 1] (high half).
void interleave_q8k(int64_t nb, const uint8_t* a, size_t as, int n_valid, uint8_t* dst) {
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint8_t* blk = dst + size_t(ib) * kLaneBlockBytes;
        float dy[kLanes] = {};
        uint32_t bs[8][kLanes] = {};
        for (int j = 0; j < kLanes; ++j) {
            if (j >= n_valid) {
                for (int g = 0; g < 64; ++g) std::memset(blk + size_t(g) * 64 + 4 * j, 0, 4);
                continue;
            }
            const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(a + size_t(j) * as) + ib;
            for (int g = 0; g < 64; ++g) std::memcpy(blk + size_t(g) * 64 + 4 * j, y->qs + 4 * g, 4);
            dy[j] = y->d;
            for (int p = 0; p < 8; ++p)
                bs[p][j] = uint32_t(uint16_t(y->bsums[2 * p])) | (uint32_t(uint16_t(y->bsums[2 * p + 1])) << 16);
        }
        std::memcpy(blk + kDyOffset, dy, sizeof dy);
        std::memcpy(blk + kBsOffset, bs, sizeof bs);
    }
}

// What a kernel gives the tile per weight block: 256 unsigned values in
// element order, kSub integer sub-block scales, 8 int32 words (int16 pairs)
// to dpwssd with the bsum pairs, and the two float factors: the block's value
// is dA * d_y * sum_k sc_k * (q . y)_k - dB * d_y * (pairs . bsums).
struct Unpacked {
    alignas(64) uint8_t q[256];
    int32_t sc[16];
    int32_t pairs[8];
    float da, db;
};

struct Q4K {
    static constexpr int kSub = 8;
    static void unpack(const uint8_t* row, int64_t ib, Unpacked* u) {
        const BlockQ4_K* x = reinterpret_cast<const BlockQ4_K*>(row) + ib;
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        for (int c = 0; c < 4; ++c) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qs + 32 * c));
            _mm256_store_si256(reinterpret_cast<__m256i*>(u->q + 64 * c), _mm256_and_si256(v, low4));
            _mm256_store_si256(reinterpret_cast<__m256i*>(u->q + 64 * c + 32),
                               _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
        }
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            k4_scale_min(j, x->scales, &sc, &m);
            u->sc[j] = sc;
            u->pairs[j] = int32_t(uint32_t(m) | (uint32_t(m) << 16));
        }
        u->da = f16(x->d);
        u->db = f16(x->dmin);
    }
};

struct Q6K {
    static constexpr int kSub = 16;
    static void unpack(const uint8_t* row, int64_t ib, Unpacked* u) {
        const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(row) + ib;
        const __m256i low4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->ql + 64 * h));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qh + 32 * h));
            const __m256i v0 = _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), hi2));
            const __m256i v1 = _mm256_or_si256(_mm256_and_si256(b, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), hi2));
            const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_and_si256(hb, hi2));
            const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), low4),
                                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), hi2));
            uint8_t* q = u->q + 128 * h;
            _mm256_store_si256(reinterpret_cast<__m256i*>(q), v0);
            _mm256_store_si256(reinterpret_cast<__m256i*>(q + 32), v1);
            _mm256_store_si256(reinterpret_cast<__m256i*>(q + 64), v2);
            _mm256_store_si256(reinterpret_cast<__m256i*>(q + 96), v3);
        }
        for (int k = 0; k < 16; ++k) u->sc[k] = x->scales[k];
        for (int p = 0; p < 8; ++p)
            u->pairs[p] = int32_t(uint32_t(uint16_t(int16_t(32 * x->scales[2 * p]))) |
                                  (uint32_t(uint16_t(int16_t(32 * x->scales[2 * p + 1]))) << 16));
        u->da = u->db = f16(x->d);
    }
};

inline __m512i bcast4(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

template <class K, int R>
void tile_lanes(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* lanes, int n_valid, float* out, size_t os) {
    constexpr int kSub = K::kSub, kGroups = 64 / kSub;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    Unpacked u[R];
    for (int64_t ib = 0; ib < nb; ++ib) {
        const uint8_t* blk = lanes + size_t(ib) * kLaneBlockBytes;
        for (int r = 0; r < R; ++r) K::unpack(w + size_t(r) * ws, ib, &u[r]);
        __m512i isum[R];
        for (int r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
        for (int k = 0; k < kSub; ++k) {
            __m512i y[kGroups];
            for (int g = 0; g < kGroups; ++g) y[g] = _mm512_loadu_si512(blk + size_t(k * kGroups + g) * 64);
            for (int r = 0; r < R; ++r) {
                const uint8_t* q = u[r].q + 4 * kGroups * k;
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                for (int g = 0; g < kGroups; g += 2) {
                    s0 = _mm512_dpbusd_epi32(s0, bcast4(q + 4 * g), y[g]);
                    s1 = _mm512_dpbusd_epi32(s1, bcast4(q + 4 * g + 4), y[g + 1]);
                }
                isum[r] = _mm512_add_epi32(
                    isum[r], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), _mm512_set1_epi32(u[r].sc[k])));
            }
        }
        const __m512 dy = _mm512_loadu_ps(reinterpret_cast<const float*>(blk + kDyOffset));
        for (int r = 0; r < R; ++r) {
            __m512i corr = _mm512_setzero_si512();
            for (int p = 0; p < 8; ++p)
                corr = _mm512_dpwssd_epi32(corr, _mm512_set1_epi32(u[r].pairs[p]),
                                           _mm512_loadu_si512(blk + kBsOffset + size_t(p) * 64));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_mul_ps(_mm512_set1_ps(u[r].da), dy), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(corr), _mm512_mul_ps(_mm512_set1_ps(u[r].db), dy), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        alignas(64) float v[kLanes];
        _mm512_store_ps(v, acc[r]);
        for (int j = 0; j < n_valid; ++j) out[size_t(j) * os + r] = v[j];
    }
}

template <class K>
void gemm_k(VecDot dot, int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as,
            int64_t n_tok, float* out, size_t os) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(act);
    if (n_tok < kLaneMinTokens) {
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < n_rows; ++r) out[size_t(t) * os + r] = dot(n, wb + size_t(r) * ws, ab + size_t(t) * as);
        return;
    }
    using LaneFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, int, float*, size_t);
    static constexpr LaneFn tiles[kTileRows] = {&tile_lanes<K, 1>, &tile_lanes<K, 2>, &tile_lanes<K, 3>,
                                                &tile_lanes<K, 4>};
    const int64_t nb = n / kQKK;
    const int64_t groups = (n_tok + kLanes - 1) / kLanes;
    const size_t group_bytes = size_t(nb) * kLaneBlockBytes;
    thread_local std::vector<uint8_t> lanes;
    if (lanes.size() < group_bytes * size_t(groups)) lanes.resize(group_bytes * size_t(groups));
    for (int64_t gi = 0; gi < groups; ++gi) {
        const int valid = int(std::min<int64_t>(kLanes, n_tok - gi * kLanes));
        interleave_q8k(nb, ab + size_t(gi * kLanes) * as, as, valid, lanes.data() + size_t(gi) * group_bytes);
    }
    for (int64_t r = 0; r < n_rows; r += kTileRows) {
        const int rr = int(std::min<int64_t>(kTileRows, n_rows - r));
        for (int64_t gi = 0; gi < groups; ++gi) {
            const int valid = int(std::min<int64_t>(kLanes, n_tok - gi * kLanes));
            tiles[rr - 1](nb, wb + size_t(r) * ws, ws, lanes.data() + size_t(gi) * group_bytes, valid,
                          out + size_t(gi * kLanes) * os + r, os);
        }
    }
}

void gemm_q4_k(int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as, int64_t n_tok,
               float* out, size_t os) {
    gemm_k<Q4K>(g_dot_q4_k, n, w, ws, n_rows, act, as, n_tok, out, os);
}

void gemm_q6_k(int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as, int64_t n_tok,
               float* out, size_t os) {
    gemm_k<Q6K>(g_dot_q6_k, n, w, ws, n_rows, act, as, n_tok, out, os);
}

}  // namespace

void fill_avx512_gemm_kquants(KernelTable* t) {
    g_dot_q4_k = slot(t, DType::q4_k).vec_dot;
    g_dot_q6_k = slot(t, DType::q6_k).vec_dot;
    if (g_dot_q4_k) slot(t, DType::q4_k).gemm = gemm_q4_k;
    if (g_dot_q6_k) slot(t, DType::q6_k).gemm = gemm_q6_k;
}

}  // namespace llmn::tensor::detail
