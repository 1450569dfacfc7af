// Shared pieces of the SentencePiece and byte-level BPE tokenizers (not part of the public API).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/tokenizer.h"

namespace llmn::model::detail {

// One piece of the input after special tokens were split out: a token id, or a
// byte range of the raw text (token < 0).
struct Fragment {
    int32_t token = -1;
    size_t offset = 0;
    size_t length = 0;
};

// Text -> id lookup plus the special-token list, built once per tokenizer.
class VocabIndex {
public:
    explicit VocabIndex(const Vocab& vocab);
    // Id of a token whose text is exactly `text`, or -1.
    int32_t find(std::string_view text) const;
    // Splits `text` around control / user-defined / unknown tokens the way llama.cpp's
    // tokenizer_st_partition does (longest token texts first; with parse_special false
    // only user-defined tokens are split out).
    std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

private:
    const Vocab& vocab_;
    std::unordered_map<std::string, int32_t> to_id_;
    std::vector<int32_t> specials_;  // by text length, longest first
};

// Pre-tokenizer families (tokenizer.ggml.pre names map onto these).
enum class PreType { default_, llama3, dbrx, gpt2, qwen2, smollm };  // dbrx: Llama-3 split, merges always run
// The family for a tokenizer.ggml.pre value; throws TokenizerError for an unknown one.
PreType pre_type_from_name(std::string_view pre);
// Splits `text` into words and returns each word byte-encoded (GPT-2 byte mapping).
std::vector<std::string> pre_tokenize(std::string_view text, PreType type);

class SpmTokenizer final : public Tokenizer {
public:
    explicit SpmTokenizer(Vocab vocab);
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
    std::string token_to_piece(int32_t id, bool special = false) const override;

private:
    void encode_text(const std::string& text, std::vector<int32_t>& out) const;
    int32_t byte_to_token(uint8_t byte) const;
    VocabIndex index_;
};

class BpeTokenizer final : public Tokenizer {
public:
    explicit BpeTokenizer(Vocab vocab);
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
    std::string token_to_piece(int32_t id, bool special = false) const override;

private:
    void encode_word(const std::string& word, std::vector<int32_t>& out) const;
    int rank(const std::string& left, const std::string& right) const;
    VocabIndex index_;
    PreType pre_ = PreType::default_;
    bool ignore_merges_ = false;
    std::unordered_map<std::string, int> ranks_;  // "left\0right" -> merge rank
};

// Normalizes a vocab before a tokenizer uses it: attrs sized and derived from types when
// missing, empty token texts renamed "[EMPTY_<id>]" (as llama.cpp does).
void prepare_vocab(Vocab& vocab);

}  // namespace llmn::model::detail
