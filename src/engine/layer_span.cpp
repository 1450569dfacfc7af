#include "engine/layer_span.h"

#include <cstring>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/partial_model.h"
#include "tensor/attention.h"
#include "tensor/fp16.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {

SpanWeights::SpanWeights(std::shared_ptr<const Model> model, int start, int end)
    : model_(std::move(model)), start_(start), end_(end) {
    const model::ModelConfig& c = model_->config();
    if (start < 0 || end > c.n_layer || start >= end)
        throw ModelError(model_->path() + ": layer span [" + std::to_string(start) + ", " + std::to_string(end) +
                         ") is not inside [0, " + std::to_string(c.n_layer) + ")");
    model::require_verified(model_->file(), model::tensors_needed(model_->file(), start, end, false));
    for (int il = start; il < end; ++il) {
        layers_.push_back(model_->layer(il));
        const LayerWeights& w = layers_.back();
        Norms n;
        read_f32_vector(*w.attn_norm, n.attn);
        read_f32_vector(*w.ffn_norm, n.ffn);
        if (w.q_norm) read_f32_vector(*w.q_norm, n.q);
        if (w.k_norm) read_f32_vector(*w.k_norm, n.k);
        if (w.bq) read_f32_vector(*w.bq, n.bq);
        if (w.bk) read_f32_vector(*w.bk, n.bk);
        if (w.bv) read_f32_vector(*w.bv, n.bv);
        norms_.push_back(std::move(n));
    }
    rope_.n_rot = c.n_rot;
    rope_.neox = c.spec.rope_type == model::RopeType::neox;
    rope_.freq_base = c.rope_freq_base;
    rope_.freq_scale = c.rope_scaling == model::RopeScaling::linear ? 1.0f / c.rope_scale_factor : 1.0f;
    if (const model::TensorInfo* ff = model_->rope_freqs()) read_f32_vector(*ff, rope_.freq_factors);
}

KvCache::KvCache(const SpanWeights& span, int n_ctx, int n_layers)
    : n_ctx_(n_ctx), k_dim_(span.model().config().n_embd_k_gqa()), v_dim_(span.model().config().n_embd_v_gqa()),
      n_layers_(n_layers < 0 ? span.n_layers() : n_layers) {
    if (n_ctx <= 0) throw ModelError("context size must be > 0");
    if (n_layers_ <= 0 || n_layers_ > span.n_layers()) throw ModelError("KV cache for " + std::to_string(n_layers_) + " layers of a " + std::to_string(span.n_layers()) + "-layer span");
    k_.resize(size_t(n_layers_) * n_ctx * k_dim_);
    v_.resize(size_t(n_layers_) * n_ctx * v_dim_);
}

std::vector<uint8_t> KvCache::copy_rows(int pos, int n) const {
    if (pos < 0 || n < 0 || pos + n > n_past_) throw std::out_of_range("KV rows outside the cached positions");
    std::vector<uint8_t> out(rows_bytes(n));
    uint8_t* o = out.data();
    for (int p = pos; p < pos + n; ++p) {
        for (int l = 0; l < n_layers_; ++l) {
            for (const auto& [src, dim] : {std::pair{&k_, k_dim_}, std::pair{&v_, v_dim_}}) {
                const size_t bytes = size_t(dim) * sizeof(uint16_t);
                std::memcpy(o, src->data() + (size_t(l) * n_ctx_ + p) * dim, bytes);
                o += bytes;
            }
        }
    }
    return out;
}

void KvCache::load_rows(int pos, int n, const uint8_t* data, size_t size) {
    if (pos < 0 || n < 0 || pos > n_past_ || pos + n > n_ctx_ || size != rows_bytes(n))
        throw std::out_of_range("KV rows for positions " + std::to_string(pos) + "+" + std::to_string(n) + " (" + std::to_string(size) +
                                " bytes) do not fit a cache of " + std::to_string(n_past_) + " past, n_ctx " + std::to_string(n_ctx_));
    for (int p = pos; p < pos + n; ++p) {
        for (int l = 0; l < n_layers_; ++l) {
            for (auto [dst, dim] : {std::pair{&k_, k_dim_}, std::pair{&v_, v_dim_}}) {
                const size_t bytes = size_t(dim) * sizeof(uint16_t);
                std::memcpy(dst->data() + (size_t(l) * n_ctx_ + p) * dim, data, bytes);
                data += bytes;
            }
        }
    }
    n_past_ = pos + n;
}

uint64_t KvCache::bytes_for(const SpanWeights& span, int n_ctx, int n_layers) {
    const model::ModelConfig& c = span.model().config();
    const int layers = n_layers < 0 ? span.n_layers() : n_layers;
    return uint64_t(layers) * n_ctx * (c.n_embd_k_gqa() + c.n_embd_v_gqa()) * sizeof(uint16_t);
}

SpanRunner::SpanRunner(std::shared_ptr<const SpanWeights> weights) : w_(std::move(weights)) {}

void SpanRunner::forward(float* hidden, const std::vector<SeqSlice>& slices, tensor::ThreadPool& pool, int first, int last) {
    const model::ModelConfig& c = w_->model().config();
    if (last < 0) last = w_->n_layers();
    if (first < 0 || first >= last || last > w_->n_layers())
        throw std::out_of_range("sub-span [" + std::to_string(first) + ", " + std::to_string(last) + ") outside the span");
    int64_t n = 0;
    for (const SeqSlice& s : slices) {
        if (!s.cache || s.n_tokens <= 0) throw std::invalid_argument("empty sequence slice");
        if (s.cache->n_layers() != last - first) throw std::invalid_argument("KV cache holds another number of layers");
        if (s.pos0 < 0 || s.pos0 > s.cache->n_past())
            throw std::out_of_range("position " + std::to_string(s.pos0) + " skips past the cache (" +
                                    std::to_string(s.cache->n_past()) + " positions)");
        if (s.pos0 + s.n_tokens > s.cache->n_ctx())
            throw std::out_of_range("context full: " + std::to_string(s.pos0 + s.n_tokens) + " positions > n_ctx " +
                                    std::to_string(s.cache->n_ctx()));
        n += s.n_tokens;
    }
    if (n == 0) return;
    const int64_t d = c.n_embd, nq = c.n_embd_q(), nk = c.n_embd_k_gqa(), nv = c.n_embd_v_gqa();
    const int64_t hd = c.n_embd_head_k, n_ff = c.n_ff;
    cur_.resize(n * d);
    q_.resize(n * nq);
    k_.resize(n * nk);
    v_.resize(n * nv);
    att_.resize(n * c.n_head * c.n_embd_head_v);
    out_.resize(n * d);
    tok_slice_.resize(n);
    tok_pos_.resize(n);
    for (int64_t si = 0, t = 0; si < int64_t(slices.size()); ++si)
        for (int i = 0; i < slices[si].n_tokens; ++i, ++t) tok_slice_[t] = int32_t(si), tok_pos_[t] = slices[si].pos0 + i;

    for (int li = first; li < last; ++li) {
        const int cl = li - first;  // layer index inside the caches
        const LayerWeights& w = w_->layer(li);
        const SpanWeights::Norms& nw = w_->norms(li);

        rms_norm(hidden, nw.attn.data(), cur_.data(), n, d, c.norm_rms_eps);  // attn_norm [n, d]
        if (w.wqkv) {
            qkv_.resize(n * (nq + nk + nv));
            matmul(*w.wqkv, cur_.data(), n, qkv_.data(), pool);  // [n, nq + nk + nv]
            for (int64_t t = 0; t < n; ++t) {
                const float* row = qkv_.data() + t * (nq + nk + nv);
                std::copy(row, row + nq, q_.data() + t * nq);
                std::copy(row + nq, row + nq + nk, k_.data() + t * nk);
                std::copy(row + nq + nk, row + nq + nk + nv, v_.data() + t * nv);
            }
        } else {
            matmul(*w.wq, cur_.data(), n, q_.data(), pool);  // [n, nq]
            matmul(*w.wk, cur_.data(), n, k_.data(), pool);  // [n, nk]
            matmul(*w.wv, cur_.data(), n, v_.data(), pool);  // [n, nv]
        }
        if (!nw.bq.empty()) add_bias(q_.data(), nw.bq.data(), n, nq);
        if (!nw.bk.empty()) add_bias(k_.data(), nw.bk.data(), n, nk);
        if (!nw.bv.empty()) add_bias(v_.data(), nw.bv.data(), n, nv);
        if (!nw.q.empty()) rms_norm(q_.data(), nw.q.data(), q_.data(), n * c.n_head, hd, c.norm_rms_eps);     // q_norm per head
        if (!nw.k.empty()) rms_norm(k_.data(), nw.k.data(), k_.data(), n * c.n_head_kv, hd, c.norm_rms_eps);  // k_norm per head
        for (int64_t t = 0; t < n; ++t) {
            rope(q_.data() + t * nq, c.n_head, int32_t(hd), tok_pos_[t], w_->rope());
            rope(k_.data() + t * nk, c.n_head_kv, int32_t(hd), tok_pos_[t], w_->rope());
            KvCache& cache = *slices[tok_slice_[t]].cache;
            uint16_t* kc = cache.k(cl, tok_pos_[t]);
            uint16_t* vc = cache.v(cl, tok_pos_[t]);
            for (int64_t i = 0; i < nk; ++i) kc[i] = tensor::f32_to_fp16(k_[t * nk + i]);
            for (int64_t i = 0; i < nv; ++i) vc[i] = tensor::f32_to_fp16(v_[t * nv + i]);
        }
        attention(li, cl, slices, int(n), pool);              // [n, n_head * head_dim_v]
        matmul(*w.wo, att_.data(), n, out_.data(), pool);     // attn_output [n, d]
        for (int64_t i = 0; i < n * d; ++i) hidden[i] += out_[i];

        rms_norm(hidden, nw.ffn.data(), cur_.data(), n, d, c.norm_rms_eps);  // ffn_norm [n, d]
        ffn_b_.resize(n * n_ff);
        if (!w.ffn_gate) {
            ffn_a_.resize(n * 2 * n_ff);
            matmul(*w.ffn_up, cur_.data(), n, ffn_a_.data(), pool);  // fused [n, 2 n_ff] = [gate | up]
            for (int64_t t = 0; t < n; ++t)
                swiglu(ffn_a_.data() + t * 2 * n_ff, ffn_a_.data() + t * 2 * n_ff + n_ff, ffn_b_.data() + t * n_ff, n_ff);
        } else {
            ffn_a_.resize(n * n_ff);
            matmul(*w.ffn_gate, cur_.data(), n, ffn_a_.data(), pool);  // [n, n_ff]
            matmul(*w.ffn_up, cur_.data(), n, ffn_b_.data(), pool);    // [n, n_ff]
            swiglu(ffn_a_.data(), ffn_b_.data(), ffn_b_.data(), n * n_ff);
        }
        matmul(*w.ffn_down, ffn_b_.data(), n, out_.data(), pool);  // ffn_down [n, d]
        for (int64_t i = 0; i < n * d; ++i) hidden[i] += out_[i];
    }
    for (const SeqSlice& s : slices) s.cache->set_n_past(s.pos0 + s.n_tokens);
}

void SpanRunner::attention(int li, int cl, const std::vector<SeqSlice>& slices, int n, tensor::ThreadPool& pool) {
    (void)li;
    const model::ModelConfig& c = w_->model().config();
    const int64_t hd = c.n_embd_head_k, hdv = c.n_embd_head_v, nq = c.n_embd_q();
    const int group = c.n_head / c.n_head_kv;
    const float scale = 1.0f / std::sqrt(float(hd));
    const tensor::AttentionF16Fn attend = tensor::attention_f16();
    // Work items: (first token, token count, head), at most kBlock consecutive
    // tokens of one slice each (a block shares every K/V row it reads). The
    // blocks of a slice go in zig-zag order (first, last, second, ...) so the
    // pool's contiguous chunks get similar causal lengths.
    constexpr int kBlock = 16;
    struct Item {
        int t0, n_tok, head;
    };
    thread_local std::vector<Item> item_buf;  // the caller's; workers read it through `items`
    std::vector<Item>& items = item_buf;
    thread_local std::vector<std::pair<int, int>> blocks;
    items.clear();
    for (int t = 0; t < n;) {
        blocks.clear();
        const int32_t si = tok_slice_[t];
        int end = t;
        while (end < n && tok_slice_[end] == si) ++end;
        for (int b = t; b < end; b += kBlock) blocks.emplace_back(b, std::min(kBlock, end - b));
        for (size_t lo = 0, hi = blocks.size(); lo < hi;) {
            for (int h = 0; h < c.n_head; ++h) items.push_back({blocks[lo].first, blocks[lo].second, h});
            ++lo;
            if (lo < hi) {
                --hi;
                for (int h = 0; h < c.n_head; ++h) items.push_back({blocks[hi].first, blocks[hi].second, h});
            }
        }
        t = end;
    }
    pool.parallel_for(int64_t(items.size()), [&](int64_t b, int64_t e, int) {
        for (int64_t it = b; it < e; ++it) {
            const Item& item = items[it];
            const int64_t kvh = item.head / group;
            KvCache& cache = *slices[tok_slice_[item.t0]].cache;
            const uint16_t* k0 = cache.k(cl, 0);
            const uint16_t* v0 = cache.v(cl, 0);
            const size_t ks = size_t(c.n_embd_k_gqa()), vs = size_t(c.n_embd_v_gqa());  // KvCache row strides
            attend(q_.data() + item.t0 * nq + item.head * hd, size_t(nq), item.n_tok, tok_pos_[item.t0],
                   k0 + kvh * hd, ks, v0 + kvh * hdv, vs, int(hd), int(hdv), scale,
                   att_.data() + (int64_t(item.t0) * c.n_head + item.head) * hdv, size_t(c.n_head * hdv));
        }
    });
}

LayerSpan::LayerSpan(std::shared_ptr<const Model> model, int start, int end, int n_ctx)
    : runner_(std::make_shared<const SpanWeights>(std::move(model), start, end)), cache_(runner_.weights(), n_ctx) {}

void LayerSpan::forward(float* hidden, int n_tokens, int pos0, tensor::ThreadPool& pool) {
    if (n_tokens <= 0) return;
    runner_.forward(hidden, {SeqSlice{&cache_, pos0, n_tokens}}, pool);
}

}  // namespace llmn::engine
