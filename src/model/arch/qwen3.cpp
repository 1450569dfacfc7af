// Qwen3: no q/k/v bias, per-head RMS norm of q and k (attn_q_norm, attn_k_norm)
// before RoPE, head_dim set by key_length (n_head * head_dim may differ from n_embd).
#include "model/arch.h"

namespace llmn::model::arch {

ArchSpec qwen3_spec() {
    ArchSpec s;
    s.arch = "qwen3";
    s.family = "Qwen3";
    s.rope_type = RopeType::neox;
    s.qk_norm = true;
    return s;
}

}  // namespace llmn::model::arch
