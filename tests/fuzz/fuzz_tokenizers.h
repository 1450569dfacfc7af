// Tokenizers for the tokenizer fuzz targets, built once: small vocabularies made
// in code (every pre-tokenizer family), the repo's bundled model, and, when the
// ../shared/models folder is present, real vocabularies. Missing files fall back
// to the in-code vocab, so slot numbers (the input's first byte) stay stable.
#pragma once
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/gguf_reader.h"
#include "model/tokenizer.h"
#include "model/unicode.h"

namespace llmn::fuzz {

using model::Tokenizer;
using model::TokenType;
using model::Vocab;

// An SPM vocab: <unk> <s> </s>, 256 byte tokens, scored pieces and a user-defined token.
inline Vocab tiny_spm() {
    Vocab v;
    v.model = "llama";
    v.pre = "default";
    auto add = [&](std::string text, float score, TokenType type) {
        v.tokens.push_back(std::move(text));
        v.scores.push_back(score);
        v.types.push_back(type);
    };
    add("<unk>", 0, TokenType::unknown);
    add("<s>", 0, TokenType::control);
    add("</s>", 0, TokenType::control);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        add(name, 0, TokenType::byte);
    }
    const std::string sp = "\xE2\x96\x81";
    const char* pieces[] = {"h", "e", "l", "o", "ll", "he", "llo", "hello", "\xC3\xA9", "\xF0\x9F\xA6\x99", "<", ">"};
    add(sp, -1, TokenType::normal);
    float score = -2;
    for (const char* p : pieces) {
        add(p, score, TokenType::normal);
        add(sp + p, score + 0.5f, TokenType::normal);
        score -= 0.25f;
    }
    add("<|user|>", 0, TokenType::user_defined);
    add("<|end|>", 0, TokenType::control);
    v.bos_id = 1, v.eos_id = 2, v.unk_id = 0;
    v.add_bos = true;
    v.eog_ids = {2, int32_t(v.tokens.size() - 1)};
    return v;
}

// A byte-level BPE vocab: the 256 byte characters, a few merges, two specials.
inline Vocab tiny_bpe(const std::string& pre) {
    Vocab v;
    v.model = "gpt2";
    v.pre = pre;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        model::unicode::append_utf8(s, model::unicode::byte_to_cpt(uint8_t(b)));
        v.tokens.push_back(s);
    }
    const std::string G = "\xC4\xA0";  // 'Ġ', the byte-level space
    v.merges = {"h e", "l l", "he ll", "hell o", G + " w", "o r", G + "w or", "1 2", G + " G", "Ã ©"};
    for (const std::string& t : std::vector<std::string>{"he", "ll", "hell", "hello", G + "w", "or", G + "wor", "12", G + "G", "Ã©"})
        v.tokens.push_back(t);
    v.types.assign(v.tokens.size(), TokenType::normal);
    v.tokens.push_back("<|endoftext|>");
    v.types.push_back(TokenType::control);
    v.tokens.push_back("<|im_start|>");
    v.types.push_back(TokenType::user_defined);
    v.bos_id = v.eos_id = int32_t(v.tokens.size() - 2);
    v.eog_ids = {v.eos_id};
    return v;
}

// The tokenizer of a GGUF file, or of `fallback` when the file is absent or unreadable.
inline std::unique_ptr<Tokenizer> from_file_or(const std::string& path, Vocab fallback) {
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        std::fclose(f);
        try {
            return Tokenizer::create(Vocab::from_gguf(*model::GgufFile::open(path)));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "fuzz: %s: %s; using the in-code vocab\n", path.c_str(), e.what());
        }
    }
    return Tokenizer::create(std::move(fallback));
}

inline std::string shared_model(const char* rel) { return std::string(LLM_NODE_SOURCE_DIR "/../shared/models/") + rel; }

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const uint8_t c = uint8_t(s[i]);
        const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        uint32_t cpt = n == 1 ? c : c & (0x7F >> n);
        for (size_t k = 1; k < n; ++k) {
            if ((uint8_t(s[i + k]) & 0xC0) != 0x80) return false;
            cpt = cpt << 6 | (uint8_t(s[i + k]) & 0x3F);
        }
        static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cpt < kMin[n] || cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

// Encodes `text` every way, turns every id back into text, and checks that plain
// valid UTF-8 comes back unchanged when it was split into normal and byte tokens only.
inline void exercise(const Tokenizer& tok, std::string_view text, bool spm) {
    std::vector<int32_t> plain;
    bool plain_ok = false;
    for (int mode = 0; mode < 4; ++mode) {
        std::vector<int32_t> ids;
        try {
            ids = tok.encode(text, mode & 1, mode & 2);
        } catch (const model::TokenizerError&) {
            continue;  // e.g. no token for a byte
        }
        model::Utf8StreamDecoder stream;
        std::string joined, streamed;
        for (int32_t id : ids) {
            if (id < 0 || id >= tok.vocab().size()) __builtin_trap();
            const std::string piece = tok.token_to_piece(id, mode & 2);
            joined += piece;
            streamed += stream.push(piece);
        }
        if (streamed + stream.flush() != joined) __builtin_trap();
        if (mode == 0) plain = std::move(ids), plain_ok = true;
    }
    const std::string_view mark = "\xE2\x96\x81";
    if (!plain_ok || !valid_utf8(text) || (spm && text.find(mark) != std::string_view::npos)) return;
    std::string joined;
    for (int32_t id : plain) {
        if (!(tok.vocab().attrs[id] & (model::TokenAttr::normal | model::TokenAttr::byte))) return;
        joined += tok.token_to_piece(id);
    }
    std::string want = spm && tok.vocab().add_space_prefix && !text.empty() ? " " : "";
    want += text;
    if (joined != want) {
        std::fprintf(stderr, "round trip: %zu bytes in, %zu bytes back\n", want.size(), joined.size());
        __builtin_trap();
    }
}

}  // namespace llmn::fuzz
