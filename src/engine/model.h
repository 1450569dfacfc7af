// A loaded GGUF model: the mapped file, its config, and typed access to the
// tensors of one layer or stage. Nothing is copied or touched until a span
// asks for its layers, so a node serving [a, b) keeps only those pages resident.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/arch.h"
#include "model/gguf_reader.h"

namespace llmn::engine {

class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Tensors of one transformer block; optional ones are null when absent.
struct LayerWeights {
    const model::TensorInfo* attn_norm = nullptr;  // [n_embd]
    const model::TensorInfo* wq = nullptr;         // [n_embd, n_embd_q]
    const model::TensorInfo* wk = nullptr;         // [n_embd, n_embd_k_gqa]
    const model::TensorInfo* wv = nullptr;         // [n_embd, n_embd_v_gqa]
    const model::TensorInfo* wqkv = nullptr;       // fused: [n_embd, n_embd_q + 2 kv]
    const model::TensorInfo* bq = nullptr;         // optional biases
    const model::TensorInfo* bk = nullptr;
    const model::TensorInfo* bv = nullptr;
    const model::TensorInfo* q_norm = nullptr;     // [head_dim], qk_norm only
    const model::TensorInfo* k_norm = nullptr;
    const model::TensorInfo* wo = nullptr;         // [n_embd_q, n_embd]
    const model::TensorInfo* ffn_norm = nullptr;   // [n_embd]
    const model::TensorInfo* ffn_gate = nullptr;   // [n_embd, n_ff]; null when fused
    const model::TensorInfo* ffn_up = nullptr;     // [n_embd, n_ff] or fused [n_embd, 2 n_ff]
    const model::TensorInfo* ffn_down = nullptr;   // [n_ff, n_embd]
};

class Model {
public:
    // Opens and validates the header and config (not the weights).
    // Throws ModelError (or model::GgufError / ArchError) naming the file.
    static std::shared_ptr<const Model> load(const std::string& path);

    const model::GgufFile& file() const { return *file_; }
    const model::ModelConfig& config() const { return config_; }
    const std::string& path() const { return file_->path(); }

    // The tensors of layer `il`, with shapes and types checked; throws ModelError
    // naming the tensor when one is missing, misshapen or of an unsupported type.
    LayerWeights layer(int il) const;
    // Stage tensors (also checked): token embeddings, final norm, LM head
    // (token_embd when tied), and the optional RoPE frequency factors.
    const model::TensorInfo& token_embd() const;
    const model::TensorInfo& output_norm() const;
    const model::TensorInfo& output() const;
    const model::TensorInfo* rope_freqs() const;

    // Total bytes of tensor data, and of the tensors of layers [a, b).
    uint64_t weight_bytes() const;
    uint64_t span_weight_bytes(int a, int b) const;
    // Parameter count (elements of every tensor).
    uint64_t n_params() const;

private:
    Model() = default;
    const model::TensorInfo& need(const std::string& name, std::initializer_list<int64_t> shape) const;
    const model::TensorInfo* maybe(const std::string& name, std::initializer_list<int64_t> shape) const;

    std::shared_ptr<const model::GgufFile> file_;
    model::ModelConfig config_;
};

}  // namespace llmn::engine
