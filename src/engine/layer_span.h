// The forward pass of a contiguous span of transformer layers [start, end) on
// hidden states, with its own KV cache. This is the unit a network node serves:
// it knows nothing of tokens, embeddings or the LM head.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model.h"
#include "engine/ops.h"

namespace llmn::tensor {
class ThreadPool;
}

namespace llmn::engine {

// K and V of every layer of a span for up to n_ctx positions, stored as f16
// (as llama.cpp's default cache): [layer][pos][n_head_kv * head_dim].
class KvCache {
public:
    KvCache(int n_layers, int n_ctx, int k_dim, int v_dim);
    uint16_t* k(int layer, int pos) { return k_.data() + (size_t(layer) * n_ctx_ + pos) * k_dim_; }
    uint16_t* v(int layer, int pos) { return v_.data() + (size_t(layer) * n_ctx_ + pos) * v_dim_; }
    int n_ctx() const { return n_ctx_; }
    uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

private:
    int n_ctx_, k_dim_, v_dim_;
    std::vector<uint16_t> k_, v_;
};

class LayerSpan {
public:
    // Resolves and checks the tensors of layers [start, end); throws ModelError.
    LayerSpan(std::shared_ptr<const Model> model, int start, int end, int n_ctx);

    // Runs the span on hidden [n_tokens, n_embd] in place. The tokens sit at
    // positions pos0 .. pos0 + n_tokens - 1; pos0 must be <= n_past() (a smaller
    // pos0 rewinds the cache). Throws std::out_of_range past the context size.
    void forward(float* hidden, int n_tokens, int pos0, tensor::ThreadPool& pool);

    int start() const { return start_; }
    int end() const { return end_; }
    int n_past() const { return n_past_; }
    int n_ctx() const { return cache_.n_ctx(); }
    void reset() { n_past_ = 0; }
    const Model& model() const { return *model_; }

private:
    void attention(int il, int n_tokens, int pos0, tensor::ThreadPool& pool);

    std::shared_ptr<const Model> model_;
    int start_, end_;
    std::vector<LayerWeights> layers_;
    struct NormWeights {
        std::vector<float> attn, ffn, q, k, bq, bk, bv;
    };
    std::vector<NormWeights> norms_;  // small vectors dequantized once
    RopeParams rope_;
    KvCache cache_;
    int n_past_ = 0;
    // Scratch, resized per call: shapes in comments use n = n_tokens.
    std::vector<float> cur_, q_, k_, v_, qkv_, att_, ffn_a_, ffn_b_, out_;
};

}  // namespace llmn::engine
