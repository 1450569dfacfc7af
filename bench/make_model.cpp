// Writes a random-weight GGUF of a real model's shape for benchmarks
// (never committed): make_model PRESET TYPE OUT.gguf
//   PRESET: tinyllama (d 2048, 22 layers, 32/4 heads, ff 5632, vocab 32000)
//           smollm2-135m (d 576, 30 layers, 9/3 heads, ff 1536, vocab 49152, tied)
//   TYPE:   f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k (the LM head gets Q6_K for 4/5-bit types, as llama.cpp does)
#include <cstdio>
#include <map>
#include <string>

#include "support/random_model.h"

int main(int argc, char** argv) {
    using llmn::tensor::DType;
    if (argc != 4) {
        std::fprintf(stderr, "usage: make_model tinyllama|smollm2-135m f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k OUT.gguf\n");
        return 2;
    }
    const std::map<std::string, DType> types = {{"f32", DType::f32},   {"f16", DType::f16},   {"bf16", DType::bf16},
                                                {"q8_0", DType::q8_0}, {"q4_0", DType::q4_0}, {"q4_k", DType::q4_k},
                                                {"q5_k", DType::q5_k}, {"q6_k", DType::q6_k}};
    llmn::testing::RandomModelSpec s;
    const std::string preset = argv[1];
    if (preset == "tinyllama") {
        s.n_embd = 2048, s.n_layer = 22, s.n_head = 32, s.n_head_kv = 4, s.n_ff = 5632, s.n_vocab = 32000;
    } else if (preset == "smollm2-135m") {
        s.n_embd = 576, s.n_layer = 30, s.n_head = 9, s.n_head_kv = 3, s.n_ff = 1536, s.n_vocab = 49152, s.tied = true;
    } else {
        std::fprintf(stderr, "unknown preset '%s'\n", preset.c_str());
        return 2;
    }
    auto it = types.find(argv[2]);
    if (it == types.end()) {
        std::fprintf(stderr, "unknown type '%s'\n", argv[2]);
        return 2;
    }
    s.weight_type = it->second;
    if (s.weight_type == DType::q4_0 || s.weight_type == DType::q4_k || s.weight_type == DType::q5_k) s.output_type = DType::q6_k;
    s.ctx_len = 2048;
    llmn::testing::write_random_model(s, argv[3]);
    std::fprintf(stderr, "wrote %s\n", argv[3]);
    return 0;
}
