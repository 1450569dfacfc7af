// AVX-512 multi-row x multi-token kernels (KernelTable::gemm).
//
// Three shapes of work:
// - prompts with Q4_0/Q8_0 weights: 16 tokens per register (tile_lanes), one
//   dpbusd per 4 weight bytes and 16 tokens;
// - other multi-token calls: tiles of R weight rows x T tokens with the R*T
//   accumulators in registers (each weight block unpacked once for T tokens,
//   each activation block loaded once for R rows);
// - decode (one token): one row at a time, streamed in order (decode_row).
// Built with the AVX-512 flags in src/tensor/CMakeLists.txt; results equal the
// scalar vec_dot up to float summation order (same integer block sums).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "tensor/kernels/kernels_impl.h"
#include "tensor/kernels/simd_common.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor::detail {
namespace {

using namespace simd;

// aux: data a decode kernel derives once per call from the activation row
// (tiles get nullptr).
using TileFn = void (*)(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, const float* aux,
                        size_t aux_stride, float* out, size_t os);

// Rows per tile when several tokens share it. Decode reads one row after the
// other: on Zen4 a single stream per thread read DRAM faster than 2, 4 or 8
// interleaved rows (kernels_bench gemm/tok1/dram, with and without prefetch).
constexpr int kTileRows = 4;

// Calls Kernel::tile<R, T> for every tile of [0, n_rows) x [0, n_tok), or
// Kernel::decode_row for each row when there is one token.
template <class Kernel>
void gemm_tiles(int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as, int64_t n_tok,
                float* out, size_t os) {
    constexpr int TMax = Kernel::kTileTokens;
    static constexpr auto multi = []<int... I>(std::integer_sequence<int, I...>) {
        return std::array<TileFn, sizeof...(I)>{&Kernel::template tile<I / TMax + 1, I % TMax + 1>...};
    }(std::make_integer_sequence<int, kTileRows * TMax>{});
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(act);
    thread_local std::vector<float> aux;
    const size_t aux_stride = Kernel::aux_floats(n);
    if (aux.size() < aux_stride) aux.resize(aux_stride);
    if (n_tok == 1) {
        Kernel::prepare_decode(n, ab, aux.data());
        for (int64_t r = 0; r < n_rows; ++r) Kernel::decode_row(n, wb + r * ws, ab, aux.data(), aux_stride, out + r);
        return;
    }
    for (int64_t r = 0; r < n_rows; r += kTileRows) {
        const int rr = int(std::min<int64_t>(kTileRows, n_rows - r));
        for (int64_t t = 0; t < n_tok; t += TMax) {
            const int tt = int(std::min<int64_t>(TMax, n_tok - t));
            multi[(rr - 1) * TMax + (tt - 1)](n, wb + r * ws, ws, ab + t * as, as, nullptr, 0, out + t * os + r, os);
        }
    }
}

// For kernels that need no per-token preparation.
struct NoAux {
    static size_t aux_floats(int64_t) { return 0; }
    static void prepare_decode(int64_t, const uint8_t*, float*) {}
};


inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

template <class Block>
inline const Block* block_at(const uint8_t* base, size_t stride, int i, int64_t ib) {
    return reinterpret_cast<const Block*>(base + size_t(i) * stride) + ib;
}

// ---- Q4_0 / Q8_0 weights x Q8_0 activations ------------------------------------
//
// The weight block becomes the unsigned operand of VNNI's dpbusd: Q4_0 nibbles
// as they are (0..15), Q8_0 values + 128 (sign bit flipped); the offset times
// sum(y) is taken off again (how depends on the shape, see each function).
template <class Block, int kOffset>
struct Q8Family {
    static constexpr int kTileTokens = 4;

    static size_t aux_floats(int64_t n) { return size_t(2 * ((n / kQK + 7) / 8 * 8)); }

    // Decode: aux = [d_y per block | -offset * d_y * sum(y) per block], each
    // half zero-padded to a multiple of 8 blocks.
    static void prepare_decode(int64_t n, const uint8_t* a, float* aux) {
        const int64_t nb = n / kQK, half = int64_t(aux_floats(n) / 2);
        const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(a);
        const __m256i ones = _mm256_set1_epi8(1);
        for (int64_t ib = 0; ib < half; ++ib) {
            if (ib >= nb) {
                aux[ib] = aux[half + ib] = 0.0f;
                continue;
            }
            const float d = f16(y[ib].d);
            const int sum = hsum_i32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, load32(y[ib].qs)));
            aux[ib] = d;
            aux[half + ib] = -float(kOffset) * d * float(sum);
        }
    }

    static __m256i unpack(const Block* x) {
        if constexpr (kOffset == 8) {
            return nibbles_32(x->qs);
        } else {
            return _mm256_xor_si256(load32(x->qs), _mm256_set1_epi8(int8_t(0x80)));
        }
    }

    // Blocks x[0] and x[1] in the two 256-bit halves, laid out as unpack() does.
    static __m512i unpack2(const Block* x) {
        if constexpr (kOffset == 8) {
            const __m128i* q0 = reinterpret_cast<const __m128i*>(x[0].qs);
            const __m128i* q1 = reinterpret_cast<const __m128i*>(x[1].qs);
            // 128-bit lanes: q0, q0, q1, q1; the second copy of each shifted down a nibble.
            const __m512i both = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(_mm_loadu_si128(q0)), 0xFF00,
                                                             _mm_loadu_si128(q1));
            const __m512i shifted = _mm512_srlv_epi64(both, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
            return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
        } else {
            const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(load32(x[0].qs)), load32(x[1].qs), 1);
            return _mm512_xor_si512(v, _mm512_set1_epi8(int8_t(0x80)));
        }
    }
    static __m512i load2(const BlockQ8_0* y) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(load32(y[0].qs)), load32(y[1].qs), 1);
    }

    // Tiles of several tokens: the offset term enters as the starting value of
    // each integer sum (-offset * sum(y), per activation block), and the block
    // scale d_x * d_y is one multiply per row and token.
    template <int R, int T>
    static void tile(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, const float*, size_t,
                     float* out, size_t os) {
        const __m256i zero = _mm256_setzero_si256();
        const __m256i off = _mm256_set1_epi8(int8_t(kOffset));
        __m256 acc[R * T];
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) acc[r * T + t] = _mm256_setzero_ps();
        for (int64_t ib = 0; ib < n / kQK; ++ib) {
            __m256i y[T], init[T];
            __m256 dy[T];
            for (int t = 0; t < T; ++t) {
                const BlockQ8_0* b = block_at<BlockQ8_0>(a, as, t, ib);
                y[t] = load32(b->qs);
                dy[t] = _mm256_set1_ps(f16(b->d));
                init[t] = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, off, y[t]));
            }
            for (int r = 0; r < R; ++r) {
                const Block* x = block_at<Block>(w, ws, r, ib);
                const __m256i q = unpack(x);
                const __m256 dx = _mm256_set1_ps(f16(x->d));
                for (int t = 0; t < T; ++t) {
                    const __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init[t], q, y[t]));
                    acc[r * T + t] = _mm256_fmadd_ps(s, _mm256_mul_ps(dx, dy[t]), acc[r * T + t]);
                }
            }
        }
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) out[t * os + r] = hsum(acc[r * T + t]);
    }

    // One row x one token, two blocks per 512-bit register. Scales d_x * d_y
    // are formed 8 blocks at a time; the offset terms, 8 blocks at a time from
    // aux, go to their own accumulator.
    static void decode_row(int64_t n, const uint8_t* w, const uint8_t* a, const float* aux, size_t aux_stride,
                           float* out) {
        const int64_t nb = n / kQK;
        const size_t half = aux_stride / 2;
        const Block* x = reinterpret_cast<const Block*>(w);
        const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(a);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        __m256 corr = _mm256_setzero_ps();
        // Two blocks per register: lanes 0..7 block k, lanes 8..15 block k + 1.
        const __m512i pick[4] = {_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
                                 _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
                                 _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6)};
        int64_t ib = 0;
        for (; ib + 8 <= nb; ib += 8) {
            const __m256 dx = load_d8(&x[ib], int(sizeof(Block)));
            const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(dx, _mm256_loadu_ps(aux + ib)));
            corr = _mm256_fmadd_ps(dx, _mm256_loadu_ps(aux + half + ib), corr);
            for (int k = 0; k < 8; k += 4) {
                const __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), unpack2(&x[ib + k]), load2(&y[ib + k]));
                const __m512i p1 =
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), unpack2(&x[ib + k + 2]), load2(&y[ib + k + 2]));
                acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[k / 2], s), _mm512_cvtepi32_ps(p0), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick[k / 2 + 1], s), _mm512_cvtepi32_ps(p1), acc1);
            }
        }
        float tail = 0.0f;
        for (; ib < nb; ++ib) {
            const float dx = f16(x[ib].d);
            const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack(&x[ib]), load32(y[ib].qs));
            tail += dx * (aux[ib] * float(hsum_i32(p)) + aux[half + ib]);
        }
        out[0] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum(corr) + tail;
    }
};


// ---- Q4_0 / Q8_0, 16 tokens per register ---------------------------------------
//
// For prompts the lanes of a register are 16 tokens: the activations are
// interleaved once per call so that 4-byte group g of block ib for tokens
// 0..15 is one 64-byte row; a weight group of 4 bytes is broadcast to all
// lanes and one dpbusd does 64 multiply-adds for 16 tokens. A block then costs
// 8 dpbusd plus 3 float ops for 16 (row, token) pairs, instead of ~3 float ops
// per pair. The integer sum starts at -offset * sum(y) per token.
constexpr int kLanes = 16;
// Per block: 8 groups x 64 bytes of int8, 16 d_y floats, 16 int32 start values.
constexpr size_t kLaneBlockBytes = 8 * 64 + 64 + 64;
// Fewer tokens than this use the rows x tokens tiles above.
constexpr int64_t kLaneMinTokens = 8;

template <int kOffset>
void interleave_tokens(int64_t nb, const uint8_t* a, size_t as, int n_valid, uint8_t* dst) {
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint8_t* blk = dst + size_t(ib) * kLaneBlockBytes;
        int32_t q[8][kLanes] = {};
        float dy[kLanes] = {};
        int32_t init[kLanes] = {};
        for (int j = 0; j < n_valid; ++j) {
            const BlockQ8_0* y = block_at<BlockQ8_0>(a, as, j, ib);
            for (int g = 0; g < 8; ++g) std::memcpy(&q[g][j], y->qs + 4 * g, 4);
            int sum = 0;
            for (int i = 0; i < kQK; ++i) sum += y->qs[i];
            dy[j] = f16(y->d);
            init[j] = -kOffset * sum;
        }
        std::memcpy(blk, q, sizeof q);
        std::memcpy(blk + sizeof q, dy, sizeof dy);
        std::memcpy(blk + sizeof q + sizeof dy, init, sizeof init);
    }
}

template <class Family, class Block, int R>
void tile_lanes(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* lanes, int n_valid, float* out, size_t os) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ++ib) {
        const uint8_t* blk = lanes + size_t(ib) * kLaneBlockBytes;
        __m512i y[8];
        for (int g = 0; g < 8; ++g) y[g] = _mm512_loadu_si512(blk + 64 * g);
        const __m512 dy = _mm512_loadu_ps(reinterpret_cast<const float*>(blk + 512));
        const __m512i init = _mm512_loadu_si512(blk + 576);
        for (int r = 0; r < R; ++r) {
            const Block* x = block_at<Block>(w, ws, r, ib);
            alignas(32) int32_t q[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(q), Family::unpack(x));
            __m512i s0 = init, s1 = _mm512_setzero_si512();
            for (int g = 0; g < 8; g += 2) {
                s0 = _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(q[g]), y[g]);
                s1 = _mm512_dpbusd_epi32(s1, _mm512_set1_epi32(q[g + 1]), y[g + 1]);
            }
            const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(f16(x->d)), dy);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), scale, acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        alignas(64) float v[kLanes];
        _mm512_store_ps(v, acc[r]);
        for (int j = 0; j < n_valid; ++j) out[size_t(j) * os + r] = v[j];
    }
}

template <class Block, int kOffset>
void gemm_q8(int64_t n, const void* w, size_t ws, int64_t n_rows, const void* act, size_t as, int64_t n_tok,
             float* out, size_t os) {
    using Family = Q8Family<Block, kOffset>;
    if (n_tok < kLaneMinTokens) return gemm_tiles<Family>(n, w, ws, n_rows, act, as, n_tok, out, os);
    using LaneFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, int, float*, size_t);
    static constexpr LaneFn tiles[kTileRows] = {&tile_lanes<Family, Block, 1>, &tile_lanes<Family, Block, 2>,
                                                &tile_lanes<Family, Block, 3>, &tile_lanes<Family, Block, 4>};
    static_assert(kTileRows == 4);
    const int64_t nb = n / kQK;
    const int64_t groups = (n_tok + kLanes - 1) / kLanes;
    const size_t group_bytes = size_t(nb) * kLaneBlockBytes;
    thread_local std::vector<uint8_t> lanes;
    if (lanes.size() < group_bytes * size_t(groups)) lanes.resize(group_bytes * size_t(groups));
    const uint8_t* ab = static_cast<const uint8_t*>(act);
    for (int64_t gi = 0; gi < groups; ++gi) {
        const int valid = int(std::min<int64_t>(kLanes, n_tok - gi * kLanes));
        interleave_tokens<kOffset>(nb, ab + size_t(gi * kLanes) * as, as, valid, lanes.data() + size_t(gi) * group_bytes);
    }
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    for (int64_t r = 0; r < n_rows; r += kTileRows) {
        const int rr = int(std::min<int64_t>(kTileRows, n_rows - r));
        for (int64_t gi = 0; gi < groups; ++gi) {
            const int valid = int(std::min<int64_t>(kLanes, n_tok - gi * kLanes));
            tiles[rr - 1](nb, wb + r * ws, ws, lanes.data() + size_t(gi) * group_bytes, valid,
                          out + size_t(gi * kLanes) * os + r, os);
        }
    }
}

// ---- BF16 weights x BF16 activations ---------------------------------

inline __mmask32 tail32(int64_t left) {
    return left >= 32 ? __mmask32(0xFFFFFFFF) : __mmask32((uint64_t(1) << left) - 1);
}

// One row x one token with four independent accumulators (Kernel::kStep
// elements per accumulator step), for the kernels without a dedicated decode.
template <class Kernel>
struct HalfDecode : NoAux {
    static void decode_row(int64_t n, const uint8_t* w, const uint8_t* a, const float*, size_t, float* out) {
        constexpr int S = Kernel::kStep;
        constexpr size_t ws = 0, as = 0;  // step() reads row 0 of each
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        int64_t e = 0;
        for (; e + 4 * S <= n; e += 4 * S)
            for (int k = 0; k < 4; ++k) acc[k] = Kernel::step(acc[k], w, ws, a, as, e + k * S, S);
        for (; e < n; e += S) acc[0] = Kernel::step(acc[0], w, ws, a, as, e, n - e);
        out[0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    }
};

// F16's gemm is in avx512_gemm_f16.cpp (16 tokens per register).

struct GemmBF16 : HalfDecode<GemmBF16> {
    static constexpr int kStep = 32;
    static __m512 step(__m512 acc, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, int64_t e, int64_t left) {
        const __mmask32 m = tail32(left);
        return _mm512_dpbf16_ps(acc, load(w, ws, 0, e, m), load(a, as, 0, e, m));
    }

    static constexpr int kTileTokens = 4;

    static __m512bh load(const uint8_t* base, size_t stride, int i, int64_t e, __mmask32 m) {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(base + size_t(i) * stride) + e;
        return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
    }

    template <int R, int T>
    static void tile(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, const float*, size_t,
                     float* out, size_t os) {
        __m512 acc[R * T];
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) acc[r * T + t] = _mm512_setzero_ps();
        for (int64_t e = 0; e < n; e += 32) {  // masked loads: all ones but at the tail
            const __mmask32 m = tail32(n - e);
            __m512bh x[R];
            for (int r = 0; r < R; ++r) x[r] = load(w, ws, r, e, m);
            for (int t = 0; t < T; ++t) {
                const __m512bh y = load(a, as, t, e, m);
                for (int r = 0; r < R; ++r) acc[r * T + t] = _mm512_dpbf16_ps(acc[r * T + t], x[r], y);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) out[t * os + r] = _mm512_reduce_add_ps(acc[r * T + t]);
    }
};

}  // namespace

void fill_avx512_gemm(KernelTable* t) {
    slot(t, DType::q4_0).gemm = gemm_q8<BlockQ4_0, 8>;
    slot(t, DType::q8_0).gemm = gemm_q8<BlockQ8_0, 128>;
    slot(t, DType::bf16).gemm = gemm_tiles<GemmBF16>;
}

}  // namespace llmn::tensor::detail
