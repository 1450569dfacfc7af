// One inference session in one process: embeddings, every layer as one span,
// and the head. Feeds token ids, returns logits. The network client uses the
// same stages with remote spans in between.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/layer_span.h"
#include "engine/session.h"
#include "engine/stages.h"

namespace llmn::engine {

struct SessionConfig {
    int n_ctx = 2048;    // positions the KV cache holds
    int n_batch = 512;   // prompt tokens evaluated per forward call
};

class LocalSession : public Session {
public:
    LocalSession(std::shared_ptr<const Model> model, SessionConfig cfg, tensor::ThreadPool& pool);

    // Evaluates `ids` at positions n_past() onward. Fills `logits` with
    // [n_vocab] for the last token, or [n, n_vocab] for every token when
    // all_positions is true. Throws std::out_of_range when the context is full.
    void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions = false) override;

    int n_past() const override { return span_.n_past(); }
    int n_ctx() const override { return span_.n_ctx(); }
    int n_vocab() const override { return model_->config().n_vocab; }
    void reset() { span_.reset(); }

private:
    std::shared_ptr<const Model> model_;
    SessionConfig cfg_;
    tensor::ThreadPool& pool_;
    EmbeddingStage embed_;
    LayerSpan span_;
    HeadStage head_;
    std::vector<float> hidden_;
};

}  // namespace llmn::engine
