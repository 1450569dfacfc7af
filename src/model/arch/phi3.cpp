// Phi-3: fused attn_qkv.weight ([q; k; v] rows) and fused ffn_up.weight
// ([gate; up] rows, 2 * n_ff), NEOX RoPE, untied output.
#include "model/arch.h"

namespace llmn::model::arch {

ArchSpec phi3_spec() {
    ArchSpec s;
    s.arch = "phi3";
    s.family = "Phi-3";
    s.rope_type = RopeType::neox;
    s.fused_qkv = true;
    s.fused_gate_up = true;
    return s;
}

}  // namespace llmn::model::arch
