// Text <-> token ids for the two tokenizer families GGUF models carry:
// SentencePiece-style (tokenizer.ggml.model = "llama") and GPT-2 byte-level BPE
// ("gpt2", with the pre-tokenizer named by tokenizer.ggml.pre).
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmn::model {

class GgufFile;

class TokenizerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Token attributes from tokenizer.ggml.token_type (llama.cpp's numbering).
enum class TokenType : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// Per-token attribute bits (llama.cpp's llama_token_attr numbering).
struct TokenAttr {
    static constexpr uint32_t undefined = 0;
    static constexpr uint32_t unknown = 1u << 0;
    static constexpr uint32_t unused = 1u << 1;
    static constexpr uint32_t normal = 1u << 2;
    static constexpr uint32_t control = 1u << 3;
    static constexpr uint32_t user_defined = 1u << 4;
    static constexpr uint32_t byte = 1u << 5;
    static constexpr uint32_t normalized = 1u << 6;
    static constexpr uint32_t lstrip = 1u << 7;  // eat whitespace before the token when splitting specials
    static constexpr uint32_t rstrip = 1u << 8;  // eat whitespace after it
    static constexpr uint32_t single_word = 1u << 9;
    // Attributes implied by a token type alone.
    static uint32_t from_type(TokenType t);
};

// Everything the tokenizers read from GGUF metadata.
struct Vocab {
    std::string model;  // tokenizer.ggml.model: "llama" or "gpt2"
    std::string pre;    // tokenizer.ggml.pre ("default" when absent)
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<TokenType> types;
    std::vector<std::string> merges;  // "a b" pairs, BPE only
    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
    int32_t eom_id = -1;
    bool add_bos = false, add_eos = false, add_space_prefix = true;
    std::vector<int32_t> eog_ids;  // every end-of-generation id (eos, eot, <|im_end|>, ...), ascending
    // TokenAttr bits per token. from_gguf fills them from `types` plus llama.cpp's by-name
    // fix-ups (control-looking end tokens, Phi-3's rstrip); left empty, Tokenizer::create
    // derives them from `types` (every token normal when `types` is empty too).
    std::vector<uint32_t> attrs;

    // Reads the tokenizer.* keys; throws TokenizerError for an unsupported
    // tokenizer model or inconsistent arrays.
    static Vocab from_gguf(const GgufFile& file);
    int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // Builds the tokenizer for vocab.model; throws TokenizerError when unsupported.
    static std::unique_ptr<Tokenizer> create(Vocab vocab);

    // Token ids of `text`, as llama.cpp's llama_tokenize(add_special, parse_special) gives them.
    // Throws TokenizerError when the vocab cannot represent the text (e.g. no byte tokens).
    virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
    // Raw bytes of one token as it appears in text (byte tokens become their byte,
    // the SentencePiece space mark becomes ' '); control tokens give "" unless `special`.
    virtual std::string token_to_piece(int32_t id, bool special = false) const = 0;

    const Vocab& vocab() const { return vocab_; }
    bool is_eog(int32_t id) const;

protected:
    explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
    // Appends BOS (or EOS) when the vocab asks for it; throws when it has none.
    void push_bos(std::vector<int32_t>& out) const;
    void push_eos(std::vector<int32_t>& out) const;
    // The piece of an out-of-range, unknown, control or user-defined token
    // (the same for both families); false for tokens the subclass decodes.
    bool special_piece(int32_t id, bool special, std::string& out) const;
    Vocab vocab_;
};

// Streams pieces to text without splitting a UTF-8 character: bytes of an
// incomplete sequence are held back until the rest arrives (or flush()).
class Utf8StreamDecoder {
public:
    std::string push(std::string_view bytes);
    std::string flush();

private:
    std::string pending_;
};

}  // namespace llmn::model
