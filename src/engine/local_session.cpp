#include "engine/local_session.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace llmn::engine {

LocalSession::LocalSession(std::shared_ptr<const Model> model, SessionConfig cfg, tensor::ThreadPool& pool)
    : model_(model), cfg_(cfg), pool_(pool), embed_(model), span_(model, 0, model->config().n_layer, cfg.n_ctx), head_(model) {
    if (cfg_.n_batch <= 0) cfg_.n_batch = 512;
}

void LocalSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    const int n = int(ids.size());
    const int64_t d = model_->config().n_embd, nv = model_->config().n_vocab;
    if (n == 0) throw std::invalid_argument("eval of an empty token list");
    if (span_.n_past() + n > span_.n_ctx())
        throw std::out_of_range("context full: " + std::to_string(span_.n_past() + n) + " tokens > n_ctx " + std::to_string(span_.n_ctx()));
    logits.resize(all_positions ? size_t(n) * nv : size_t(nv));
    for (int b = 0; b < n; b += cfg_.n_batch) {
        const int m = std::min(cfg_.n_batch, n - b);
        hidden_.resize(size_t(m) * d);
        embed_.embed(ids.data() + b, m, hidden_.data());        // [m, d]
        span_.forward(hidden_.data(), m, span_.n_past(), pool_);  // [m, d]
        if (all_positions) {
            head_.logits(hidden_.data(), m, logits.data() + size_t(b) * nv, pool_);
        } else if (b + m == n) {
            head_.logits(hidden_.data() + size_t(m - 1) * d, 1, logits.data(), pool_);
        }
    }
}

}  // namespace llmn::engine
