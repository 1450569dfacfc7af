// Small x86 helpers shared by the AVX2 and AVX-512 kernel files.
//
// Include only from translation units built with at least -mavx2 -mfma -mf16c.
// Everything here is `static inline`, so each ISA file gets its own copy built
// with its own flags (no shared inline copy that might use AVX-512).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace llmn::tensor::simd {

static inline float f16(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t to_f16(float f) { return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline float hmax_abs(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline int load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// The f16 fields at p, p + stride, ..., p + 7 * stride (the `d` of 8 consecutive
// blocks) as 8 floats: cheaper than eight scalar conversions.
static inline __m256 load_d8(const void* first, int stride) {
    const uint8_t* p = static_cast<const uint8_t*>(first);
    __m128i v = _mm_cvtsi32_si128(load_u16(p));
    v = _mm_insert_epi16(v, load_u16(p + stride), 1);
    v = _mm_insert_epi16(v, load_u16(p + 2 * stride), 2);
    v = _mm_insert_epi16(v, load_u16(p + 3 * stride), 3);
    v = _mm_insert_epi16(v, load_u16(p + 4 * stride), 4);
    v = _mm_insert_epi16(v, load_u16(p + 5 * stride), 5);
    v = _mm_insert_epi16(v, load_u16(p + 6 * stride), 6);
    v = _mm_insert_epi16(v, load_u16(p + 7 * stride), 7);
    return _mm256_cvtph_ps(v);
}

// Lane k of v in all 8 lanes.
static inline __m256 lane(__m256 v, int k) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k)); }

// 16 packed bytes -> 32 bytes: the low nibbles (elements 0..15) then the high
// nibbles (elements 16..31), each in [0,15].
static inline __m256i nibbles_32(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits (little endian) -> 32 bytes, 0xFF where the bit is set, else 0.
static inline __m256i bits_to_bytes_32(const uint8_t* bits) {
    uint32_t v;
    std::memcpy(&v, bits, sizeof v);
    // Byte i takes source byte i / 8, then tests bit i % 8.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(int(v)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Sum of x_i * y_i for unsigned x (< 128 when pairs may saturate) and signed y,
// as 8 int32 lanes.
static inline __m256i dot_u8_i8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

// Same for signed x and y (x != -128): |x| times y with x's sign.
static inline __m256i dot_i8_i8(__m256i x, __m256i y) {
    return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// Q4_K/Q5_K: the eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a block.
static inline void unpack_k4_scales(const uint8_t* packed, uint32_t out[4]) {
    constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
    uint32_t a[3];
    std::memcpy(a, packed, 12);
    out[0] = a[0] & kLow6;
    out[1] = (a[2] & kLow4) | (((a[0] >> 6) & kLow2) << 4);
    out[2] = a[1] & kLow6;
    out[3] = ((a[2] >> 4) & kLow4) | (((a[1] >> 6) & kLow2) << 4);
}

// Broadcasts int16 lane k of a 128-bit vector (repeated in both halves) to all lanes.
static inline __m256i broadcast_i16(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * k)));
}

}  // namespace llmn::tensor::simd
