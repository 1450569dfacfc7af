// Llama family: Llama 2 / 3 / 3.x, TinyLlama, SmolLM, Mistral-style GQA.
// Tensors per layer: attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
// ffn_gate, ffn_up, ffn_down; output.weight optional (tied embeddings);
// rope_freqs.weight optional (Llama 3.1 frequency factors).
#include "model/arch.h"

namespace llmn::model::arch {

ArchSpec llama_spec() {
    ArchSpec s;
    s.arch = "llama";
    s.family = "Llama";
    s.rope_type = RopeType::norm;
    return s;
}

}  // namespace llmn::model::arch
