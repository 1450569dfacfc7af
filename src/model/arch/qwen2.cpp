// Qwen2 / Qwen2.5: Llama's layout plus attn_{q,k,v}.bias, NEOX RoPE.
#include "model/arch.h"

namespace llmn::model::arch {

ArchSpec qwen2_spec() {
    ArchSpec s;
    s.arch = "qwen2";
    s.family = "Qwen2";
    s.rope_type = RopeType::neox;
    s.qkv_bias = true;
    return s;
}

}  // namespace llmn::model::arch
