// Helpers shared by the tensor tests: random rows, byte buffers with a chosen
// misalignment, and the list of types with kernels.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/kernels.h"

namespace llmn::tensor::test {

// Every type the engine can compute with (weights), in GGUF id order.
inline const std::vector<DType>& computable_types() {
    static const std::vector<DType> types = {DType::f32,  DType::f16,  DType::q4_0, DType::q4_1, DType::q5_0,
                                             DType::q5_1, DType::q8_0, DType::q2_k, DType::q3_k, DType::q4_k,
                                             DType::q5_k, DType::q6_k, DType::bf16};
    return types;
}

// Types that activations are converted to before a dot product.
inline const std::vector<DType>& activation_types() {
    static const std::vector<DType> types = {DType::f32, DType::f16, DType::bf16,
                                             DType::q8_0, DType::q8_1, DType::q8_k};
    return types;
}

// n values from N(0, sigma) with a fixed seed.
inline std::vector<float> random_row(int64_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
}

// A byte buffer whose data() starts `offset` bytes past a 64-byte boundary, so
// kernels see misaligned rows.
class Buffer {
public:
    Buffer(size_t bytes, size_t offset) : storage_(bytes + 128), offset_(offset) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data());
        const size_t aligned = size_t((64 - base % 64) % 64);
        start_ = aligned + offset_;
    }
    uint8_t* data() { return storage_.data() + start_; }
    const uint8_t* data() const { return storage_.data() + start_; }

private:
    std::vector<uint8_t> storage_;
    size_t offset_;
    size_t start_ = 0;
};

// Quantizes f32 values into a `type` row (scalar reference) in a buffer at `offset`.
inline Buffer quantized(DType type, const std::vector<float>& x, size_t offset) {
    Buffer buf(row_bytes(type, int64_t(x.size())), offset);
    scalar_kernels(type).quantize_row(x.data(), buf.data(), int64_t(x.size()));
    return buf;
}

inline std::vector<float> dequantized(DType type, const void* row, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    scalar_kernels(type).dequantize_row(row, out.data(), n);
    return out;
}

inline double rms(const std::vector<float>& v) {
    double s = 0.0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s / double(v.size()));
}

// Sum of |a_i * b_i|: the scale that dot-product tolerances are relative to.
inline double abs_dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) * b[i]);
    return s;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
    return s;
}

}  // namespace llmn::tensor::test
