// Byte-level BPE tokenizer: every pre-tokenizer family on a small vocab made in
// code, plus real vocabularies when ../shared/models is present. Encode every
// way, decode every id (and one from the input), round-trip plain UTF-8.
// Input: [u8 vocab slot][i32 id][text].
#include "fuzz_tokenizers.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto toks = [] {
        std::vector<std::unique_ptr<model::Tokenizer>> t;
        for (const char* pre : {"default", "llama-bpe", "dbrx", "gpt-2", "qwen2", "smollm"})
            t.push_back(model::Tokenizer::create(fuzz::tiny_bpe(pre)));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("real/vocab/gpt2-vocab-only.gguf"), fuzz::tiny_bpe("gpt-2")));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("synthetic/llama-bpe-q4_0.gguf"), fuzz::tiny_bpe("llama-bpe")));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("synthetic/qwen2-q8_0.gguf"), fuzz::tiny_bpe("qwen2")));
        return t;
    }();
    if (size < 5) return 0;
    const model::Tokenizer& tok = *toks[data[0] % toks.size()];
    const int32_t id = int32_t(uint32_t(data[1]) | uint32_t(data[2]) << 8 | uint32_t(data[3]) << 16 | uint32_t(data[4]) << 24);
    (void)tok.token_to_piece(id, true), (void)tok.token_to_piece(id, false), (void)tok.is_eog(id);
    fuzz::exercise(tok, std::string_view(reinterpret_cast<const char*>(data + 5), size - 5), false);
    return 0;
}
