// Quantized block layouts, byte-compatible with GGUF (ggml's block_* structs).
//
// Every struct is packed and its size is checked below, so a pointer into a
// memory-mapped GGUF tensor can be read as an array of these blocks. Half
// precision fields hold raw IEEE binary16 bits (see tensor/fp16.h).
#pragma once
#include <cstdint>

namespace llmn::tensor {

// Elements per block: the 32-wide legacy quants and the 256-wide K-quants.
inline constexpr int kQK = 32;
inline constexpr int kQKK = 256;
// Bytes of packed 6-bit scales/mins in Q3_K, Q4_K and Q5_K.
inline constexpr int kKScaleBytes = 12;

#pragma pack(push, 1)

// x = d * (q - 8), q in [0,15]; element j in low nibble of qs[j], j+16 in high.
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2];
};
// x = d * q + m, q in [0,15].
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};
// x = d * (q - 16), q in [0,31]; bit 4 of element j is bit j of qh (little endian).
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
// x = d * q + m, q in [0,31].
struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
// x = d * q.
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};
// x = d * q; s = d * sum(q), used to fold Q4_1/Q5_1 offsets into the dot.
struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[kQK];
};

// 16 sub-blocks of 16: x = d * (scales & 15) * q - dmin * (scales >> 4), q in [0,3].
struct BlockQ2_K {
    uint8_t scales[kQKK / 16];
    uint8_t qs[kQKK / 4];
    uint16_t d;
    uint16_t dmin;
};
// 16 sub-blocks of 16 with signed 6-bit scales (stored + 32): x = d * s * q,
// q in [-4,3]: two low bits in qs, the third (inverted) in hmask.
struct BlockQ3_K {
    uint8_t hmask[kQKK / 8];
    uint8_t qs[kQKK / 4];
    uint8_t scales[kKScaleBytes];
    uint16_t d;
};
// 8 sub-blocks of 32 with 6-bit scales and mins: x = d * sc * q - dmin * m.
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];
    uint8_t qs[kQKK / 2];
};
// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];
    uint8_t qh[kQKK / 8];
    uint8_t qs[kQKK / 2];
};
// 16 sub-blocks of 16 with int8 scales: x = d * scales * (q - 32), q in [0,63].
struct BlockQ6_K {
    uint8_t ql[kQKK / 2];
    uint8_t qh[kQKK / 4];
    int8_t scales[kQKK / 16];
    uint16_t d;
};
// Activation block for K-quant dots: x = d * q, bsums = sums of q per 16.
struct BlockQ8_K {
    float d;
    int8_t qs[kQKK];
    int16_t bsums[kQKK / 16];
};

#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block,
// unpacked from the 12-byte `scales` field as ggml's get_scale_min_k4 does.
static inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

}  // namespace llmn::tensor
