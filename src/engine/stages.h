// The client-side stages around the layer spans: token embedding lookup at the
// start, final RMS norm + LM head at the end.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model.h"

namespace llmn::tensor {
class ThreadPool;
}

namespace llmn::engine {

class EmbeddingStage {
public:
    explicit EmbeddingStage(std::shared_ptr<const Model> model);
    // out: [n, n_embd]. Throws std::out_of_range for an id outside the vocabulary.
    void embed(const int32_t* ids, int n, float* out) const;

private:
    std::shared_ptr<const Model> model_;
    const model::TensorInfo* table_;
};

class HeadStage {
public:
    explicit HeadStage(std::shared_ptr<const Model> model);
    // logits: [n, n_vocab] for hidden [n, n_embd] (final norm then LM head).
    void logits(const float* hidden, int n, float* out, tensor::ThreadPool& pool);

private:
    std::shared_ptr<const Model> model_;
    const model::TensorInfo* output_;
    std::vector<float> norm_, normed_;
};

}  // namespace llmn::engine
