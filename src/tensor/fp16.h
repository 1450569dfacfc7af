// Conversions between f32 and the 16-bit float formats GGUF stores.
//
// f16 is IEEE binary16: conversion from f32 rounds to nearest even, handles
// subnormals, overflows to infinity and keeps NaN a (quiet) NaN. bf16 is the top
// half of an f32; conversion from f32 rounds to nearest even like ggml and
// quiets NaN. The functions have internal linkage (static) on purpose: this
// header is included by translation units built with different ISA flags, and
// shared inline copies could otherwise be merged into one that uses AVX-512.
#pragma once
#include <cstdint>
#include <cstring>

namespace llmn::tensor {

static inline float bits_to_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fp16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t mant = h & 0x3FF;
    if (exp == 0) {
        // Zero or subnormal: mant * 2^-24 is exact in f32.
        const float v = float(mant) * 5.9604644775390625e-8f;
        return bits_to_f32(sign | f32_to_bits(v));
    }
    if (exp == 31) return bits_to_f32(sign | 0x7F800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t f32_to_fp16(float f) {
    uint32_t u = f32_to_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    u &= 0x7FFFFFFFu;
    if (u > 0x7F800000u) return uint16_t(sign | 0x7E00 | ((u >> 13) & 0x3FF));  // NaN
    if (u >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // rounds to +-inf
    if (u < 0x38800000u) {
        // Below the smallest normal half: adding 0.5 puts the half's subnormal
        // unit (2^-24) at the f32 ulp, so the FPU rounds to nearest even for us.
        const float v = bits_to_f32(u) + 0.5f;
        return uint16_t(sign | (f32_to_bits(v) - 0x3F000000u));
    }
    const uint32_t odd = (u >> 13) & 1;
    u += 0xC8000FFFu + odd;  // rebias the exponent (-112 << 23) and round
    return uint16_t(sign | (u >> 13));
}

static inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

static inline uint16_t f32_to_bf16(float f) {
    const uint32_t u = f32_to_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 64);  // quiet NaN
    return uint16_t((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

}  // namespace llmn::tensor
