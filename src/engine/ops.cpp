#include "engine/ops.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "model/gguf_reader.h"
#include "tensor/dtype.h"
#include "tensor/kernels.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {

// Batches up to this size take the one-token kernel per token (see matmul).
constexpr int64_t kSmallBatchTokens = 6;

bool pass_keeps_bits(int64_t job_tokens, int64_t pass_tokens) {
    return job_tokens == pass_tokens || (job_tokens <= kSmallBatchTokens && pass_tokens <= kSmallBatchTokens);
}

void matmul(const model::TensorInfo& w, const float* x, int64_t n_tokens, float* y, tensor::ThreadPool& pool) {
    const int64_t K = w.ne[0];
    const int64_t N = w.n_rows();
    const tensor::KernelTable& kt = tensor::kernels(w.type);
    if (!kt.vec_dot) throw std::runtime_error("tensor '" + w.name + "': no kernels for type " + std::string(tensor::dtype_name(w.type)));
    const size_t w_row = tensor::row_bytes(w.type, K);
    const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
    size_t act_row = K * sizeof(float);
    // Activations converted once per call; one buffer per calling thread.
    thread_local std::vector<uint8_t> converted;
    if (kt.vec_dot_type != tensor::DType::f32) {
        const tensor::KernelTable& at = tensor::kernels(kt.vec_dot_type);
        act_row = tensor::row_bytes(kt.vec_dot_type, K);
        if (converted.size() < act_row * n_tokens) converted.resize(act_row * n_tokens);
        uint8_t* dst = converted.data();
        if (n_tokens >= 4) {
            pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
                for (int64_t t = b; t < e; ++t) at.quantize_row(x + t * K, dst + t * act_row, K);
            });
        } else {
            for (int64_t t = 0; t < n_tokens; ++t) at.quantize_row(x + t * K, dst + t * act_row, K);
        }
        act = dst;
    }
    const uint8_t* wdata = w.data;
    if (auto gemm = kt.gemm) {
        if (n_tokens > 1 && n_tokens <= kSmallBatchTokens) {
            // A few tokens (a replica's audit batch, two sessions' decode steps): the
            // one-token path per token over a block of rows that stays in L2, so the
            // weights come from memory once. The tiled path costs ~4 decode steps at
            // 2 tokens (bench -p 2 -t 1: 132 ms against 37 ms for one on TinyLlama Q4_0).
            pool.parallel_for(N, [&](int64_t r0, int64_t r1, int) {
                constexpr int64_t kRowBlock = 64;
                for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
                    const int64_t re = std::min(r1, rb + kRowBlock);
                    for (int64_t t = 0; t < n_tokens; ++t)
                        gemm(K, wdata + rb * w_row, w_row, re - rb, act + t * act_row, act_row, 1, y + t * N + rb, size_t(N));
                }
            });
            return;
        }
        // Each thread takes a contiguous range of rows; the kernel tiles it into
        // rows x tokens blocks with the accumulators in registers (one token:
        // whole rows streamed in order).
        pool.parallel_for(N, [&](int64_t r0, int64_t r1, int) {
            gemm(K, wdata + r0 * w_row, w_row, r1 - r0, act, act_row, n_tokens, y + r0, size_t(N));
        });
        return;
    }
    auto dot = kt.vec_dot;
    pool.parallel_for(N, [&](int64_t r0, int64_t r1, int) {
        // Blocks of rows reuse the activations from cache across tokens.
        constexpr int64_t kRowBlock = 16;
        for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
            const int64_t re = std::min(r1, rb + kRowBlock);
            for (int64_t t = 0; t < n_tokens; ++t) {
                const uint8_t* a = act + t * act_row;
                float* yt = y + t * N;
                for (int64_t r = rb; r < re; ++r) yt[r] = dot(K, wdata + r * w_row, a);
            }
        }
    });
}

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* xr = x + r * dim;
        float* yr = y + r * dim;
        double sum = 0.0;
        for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
        const float scale = 1.0f / std::sqrt(float(sum / double(dim)) + eps);
        if (weight) {
            for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
        } else {
            for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale;
        }
    }
}

void add_bias(float* x, const float* bias, int64_t n_rows, int64_t dim) {
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t i = 0; i < dim; ++i) x[r * dim + i] += bias[i];
}

void rope(float* x, int32_t n_heads, int32_t head_dim, int64_t pos, const RopeParams& p) {
    const int32_t half = p.n_rot / 2;
    // theta_i = pos * scale * base^(-2i/n_rot) / factor_i, computed as ggml does (float, iterative).
    thread_local std::vector<float> cs;
    cs.resize(2 * half);
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    float theta_base = float(pos);
    for (int32_t i = 0; i < half; ++i) {
        const float ff = p.freq_factors.empty() ? 1.0f : p.freq_factors[i];
        const float theta = p.freq_scale * theta_base / ff;
        cs[2 * i] = std::cos(theta);
        cs[2 * i + 1] = std::sin(theta);
        theta_base *= theta_scale;
    }
    for (int32_t h = 0; h < n_heads; ++h) {
        float* v = x + int64_t(h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
            const int32_t a = p.neox ? i : 2 * i;
            const int32_t b = p.neox ? i + half : 2 * i + 1;
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void softmax(float* x, int64_t n) {
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void read_f32_vector(const model::TensorInfo& t, std::vector<float>& out) {
    const int64_t n = t.n_elements();
    out.resize(n);
    const tensor::KernelTable& kt = tensor::scalar_kernels(t.type);
    if (!kt.dequantize_row) throw std::runtime_error("tensor '" + t.name + "': cannot read type " + std::string(tensor::dtype_name(t.type)));
    kt.dequantize_row(t.data, out.data(), n);
}

}  // namespace llmn::engine
