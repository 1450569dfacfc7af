// Small random-weight GGUF models of each supported architecture, written with
// our own GgufWriter, for tests that must not depend on ../shared.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "tensor/dtype.h"

namespace llmn::model {
class GgufWriter;
}

namespace llmn::testing {

struct RandomModelSpec {
    std::string arch = "llama";        // llama, qwen2, qwen3, phi3
    tensor::DType weight_type = tensor::DType::f32;  // 2-D weights; norms stay F32
    int n_layer = 4;
    int n_embd = 64;
    int n_head = 4;
    int n_head_kv = 2;
    int head_dim = 0;                  // 0: n_embd / n_head
    int n_ff = 96;
    int n_vocab = 300;                 // byte-level-ish SPM vocab of this size
    bool tied = false;
    std::optional<tensor::DType> output_type;  // LM head type (default: weight_type)
    int ctx_len = 512;
    uint64_t seed = 1;
};

// Adds a SentencePiece vocab (<unk> <s> </s>, 256 byte tokens, then word
// pieces) of at least 259 and up to n_vocab tokens; returns its size.
int add_spm_vocab(model::GgufWriter& w, int n_vocab);

// Writes the model to `path` (with a small SentencePiece vocab) and returns path.
std::string write_random_model(const RandomModelSpec& spec, const std::string& path);

}  // namespace llmn::testing
