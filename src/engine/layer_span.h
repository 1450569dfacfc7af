// The forward pass of a contiguous span of transformer layers [start, end) on
// hidden states. This is the unit a network node serves: it knows nothing of
// tokens, embeddings or the LM head.
//
// SpanWeights holds the (shared, read-only) weights of a span; KvCache holds one
// sequence's keys and values; SpanRunner runs a batch of tokens from several
// sequences in one pass (matmuls over all tokens, attention per sequence), which
// is how a node batches the decode steps of concurrent sessions. LayerSpan
// bundles the three for one sequence.
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

class SpanWeights {
public:
    // Resolves and checks the tensors of layers [start, end); throws ModelError.
    SpanWeights(std::shared_ptr<const Model> model, int start, int end);

    struct Norms {
        std::vector<float> attn, ffn, q, k, bq, bk, bv;  // small vectors dequantized once
    };
    const Model& model() const { return *model_; }
    int start() const { return start_; }
    int end() const { return end_; }
    int n_layers() const { return end_ - start_; }
    const LayerWeights& layer(int i) const { return layers_[i]; }  // i relative to start
    const Norms& norms(int i) const { return norms_[i]; }
    const RopeParams& rope() const { return rope_; }

private:
    std::shared_ptr<const Model> model_;
    int start_, end_;
    std::vector<LayerWeights> layers_;
    std::vector<Norms> norms_;
    RopeParams rope_;
};

// K and V of every layer of a span for up to n_ctx positions of one sequence,
// stored as f16 (as llama.cpp's default cache): [layer][pos][n_head_kv * head_dim].
class KvCache {
public:
    // For all layers of `span`, or for n_layers of them (a sub-span a session uses).
    KvCache(const SpanWeights& span, int n_ctx, int n_layers = -1);
    uint16_t* k(int layer, int pos) { return k_.data() + (size_t(layer) * n_ctx_ + pos) * k_dim_; }
    uint16_t* v(int layer, int pos) { return v_.data() + (size_t(layer) * n_ctx_ + pos) * v_dim_; }
    int n_ctx() const { return n_ctx_; }
    int n_layers() const { return n_layers_; }
    int n_past() const { return n_past_; }
    void set_n_past(int n) { n_past_ = n; }
    uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }
    // The rows of positions [pos, pos + n) of every layer, as bytes: per
    // position, per layer its K row then its V row (f16), so that the rows of
    // consecutive steps concatenate. A hop's receipt carries them so that a
    // replica can take over its history and re-run one sampled step (client/audit.h).
    size_t rows_bytes(int n) const { return size_t(n) * n_layers_ * (k_dim_ + v_dim_) * sizeof(uint16_t); }
    std::vector<uint8_t> copy_rows(int pos, int n) const;
    // Loads rows_bytes(n) bytes of that layout at positions [pos, pos + n) and sets
    // n_past to pos + n. Throws std::out_of_range when pos > n_past or it does not fit.
    void load_rows(int pos, int n, const uint8_t* data, size_t size);
    static uint64_t bytes_for(const SpanWeights& span, int n_ctx, int n_layers = -1);

private:
    int n_ctx_, k_dim_, v_dim_, n_layers_;
    int n_past_ = 0;
    std::vector<uint16_t> k_, v_;
};

// One sequence's share of a batch: n_tokens consecutive rows of the hidden
// states at positions pos0 .. pos0 + n_tokens - 1 of `cache`.
struct SeqSlice {
    KvCache* cache = nullptr;
    int pos0 = 0;
    int n_tokens = 0;
};

class SpanRunner {
public:
    explicit SpanRunner(std::shared_ptr<const SpanWeights> weights);
    // Runs the span on hidden [sum n_tokens, n_embd] in place, rows in slice
    // order. Each slice's pos0 must be <= its cache's n_past (smaller rewinds).
    // Throws std::out_of_range (before touching anything) when a slice does not
    // fit its cache. [first, last) selects a sub-span (indices relative to the
    // span's start; last -1 = the end); every slice's cache must hold those layers.
    void forward(float* hidden, const std::vector<SeqSlice>& slices, tensor::ThreadPool& pool, int first = 0, int last = -1);
    const SpanWeights& weights() const { return *w_; }

private:
    void attention(int li, int cache_layer, const std::vector<SeqSlice>& slices, int n, tensor::ThreadPool& pool);

    std::shared_ptr<const SpanWeights> w_;
    // Scratch, resized per call (n = total tokens of the batch).
    std::vector<float> cur_, q_, k_, v_, qkv_, att_, ffn_a_, ffn_b_, out_;
    std::vector<int32_t> tok_slice_, tok_pos_;  // per token: its slice and position
};

// One sequence through one span (a node's session, or the whole model locally).
class LayerSpan {
public:
    LayerSpan(std::shared_ptr<const Model> model, int start, int end, int n_ctx);
    // Runs n_tokens rows of hidden at positions pos0.. (pos0 <= n_past()).
    void forward(float* hidden, int n_tokens, int pos0, tensor::ThreadPool& pool);
    int start() const { return runner_.weights().start(); }
    int end() const { return runner_.weights().end(); }
    int n_past() const { return cache_.n_past(); }
    int n_ctx() const { return cache_.n_ctx(); }
    void reset() { cache_.set_n_past(0); }

private:
    SpanRunner runner_;
    KvCache cache_;
};

}  // namespace llmn::engine
