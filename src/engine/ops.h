// Numeric building blocks of the forward pass: matmul against a GGUF weight,
// RMS norm, RoPE, SiLU-gated MLP activation, softmax.
//
// Shapes follow ggml: a weight of ne = [K, N] has N rows of K elements; an
// activation matrix of n tokens is row-major [n, K].
#pragma once
#include <cstdint>
#include <vector>

namespace llmn::model {
struct TensorInfo;
}
namespace llmn::tensor {
class ThreadPool;
}

namespace llmn::engine {

// y[t, r] = dot(w row r, x[t]) for t < n_tokens, r < N (w.ne[1]).
// x rows are converted once to the weight type's vec_dot_type (8-bit blocks for
// quantized weights), so the dot products run in the kernels' integer paths.
void matmul(const model::TensorInfo& w, const float* x, int64_t n_tokens, float* y, tensor::ThreadPool& pool);

// True when a step of `job_tokens` tokens, run in one forward pass of
// `pass_tokens` tokens (other sessions' steps beside it), gets the bits it gets
// alone with the same kernels: equal sizes, or a pass small enough that every
// token takes the one-token path. An audited step must (a replica re-runs it alone).
bool pass_keeps_bits(int64_t job_tokens, int64_t pass_tokens);

// y = x / sqrt(mean(x^2) + eps) * weight, row by row over n rows of `dim`.
// `weight` may be null (plain normalisation).
void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps);

// Adds a bias vector of `dim` to each of n rows.
void add_bias(float* x, const float* bias, int64_t n_rows, int64_t dim);

// Precomputed RoPE parameters for one model.
struct RopeParams {
    int32_t n_rot = 0;           // rotated dims per head (even)
    bool neox = false;           // pairs (i, i + n_rot/2) instead of (2i, 2i+1)
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;     // 1 / linear scaling factor
    std::vector<float> freq_factors;  // n_rot/2 divisors of theta (Llama 3.1 rope_freqs), or empty
};

// Rotates each head (n_heads of head_dim, at the start of each) of one token at position pos.
void rope(float* x, int32_t n_heads, int32_t head_dim, int64_t pos, const RopeParams& p);

// out[i] = silu(gate[i]) * up[i].
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// In-place softmax over n values; returns nothing, values sum to 1.
void softmax(float* x, int64_t n);

// Reads f32 values of a 1-D tensor (F32, F16 or BF16) into out (resized).
void read_f32_vector(const model::TensorInfo& t, std::vector<float>& out);

}  // namespace llmn::engine
