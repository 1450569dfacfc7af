// SentencePiece tokenizer: encode arbitrary bytes every way, decode every id
// (and one id taken from the input), round-trip plain UTF-8.
// Input: [u8 vocab slot][i32 id][text].
#include "fuzz_tokenizers.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto toks = [] {
        std::vector<std::unique_ptr<model::Tokenizer>> t;
        t.push_back(fuzz::from_file_or(LLM_NODE_SOURCE_DIR "/models/stories260K.gguf", fuzz::tiny_spm()));
        t.push_back(model::Tokenizer::create(fuzz::tiny_spm()));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("real/vocab/phi3-mini-vocab-only.gguf"), fuzz::tiny_spm()));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("real/llama-tinystories656k-q8_0.gguf"), fuzz::tiny_spm()));
        t.push_back(fuzz::from_file_or(fuzz::shared_model("synthetic/llama-spm-q4_k_m.gguf"), fuzz::tiny_spm()));
        return t;
    }();
    if (size < 5) return 0;
    const model::Tokenizer& tok = *toks[data[0] % toks.size()];
    const int32_t id = int32_t(uint32_t(data[1]) | uint32_t(data[2]) << 8 | uint32_t(data[3]) << 16 | uint32_t(data[4]) << 24);
    (void)tok.token_to_piece(id, true), (void)tok.token_to_piece(id, false), (void)tok.is_eog(id);
    fuzz::exercise(tok, std::string_view(reinterpret_cast<const char*>(data + 5), size - 5), true);
    return 0;
}
