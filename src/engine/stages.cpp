#include "engine/stages.h"

#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "model/partial_model.h"
#include "tensor/kernels.h"

namespace llmn::engine {

EmbeddingStage::EmbeddingStage(std::shared_ptr<const Model> model)
    : model_(std::move(model)), table_(&model_->token_embd()) {
    model::require_verified(model_->file(), {table_->name});
}

void EmbeddingStage::embed(const int32_t* ids, int n, float* out) const {
    const int64_t d = model_->config().n_embd;
    const int64_t n_vocab = table_->ne[1];
    const size_t row = tensor::row_bytes(table_->type, d);
    const tensor::KernelTable& kt = tensor::kernels(table_->type);
    for (int i = 0; i < n; ++i) {
        if (ids[i] < 0 || ids[i] >= n_vocab)
            throw std::out_of_range("token id " + std::to_string(ids[i]) + " outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
        kt.dequantize_row(table_->data + size_t(ids[i]) * row, out + i * d, d);
    }
}

HeadStage::HeadStage(std::shared_ptr<const Model> model) : model_(std::move(model)), output_(&model_->output()) {
    model::require_verified(model_->file(), {output_->name, "output_norm.weight"});
    read_f32_vector(model_->output_norm(), norm_);
}

void HeadStage::logits(const float* hidden, int n, float* out, tensor::ThreadPool& pool) {
    const model::ModelConfig& c = model_->config();
    normed_.resize(size_t(n) * c.n_embd);
    rms_norm(hidden, norm_.data(), normed_.data(), n, c.n_embd, c.norm_rms_eps);  // output_norm [n, d]
    matmul(*output_, normed_.data(), n, out, pool);                                // output [n, n_vocab]
}

}  // namespace llmn::engine
