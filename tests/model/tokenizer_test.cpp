// Tokenizer unit tests on tiny vocabularies built in code (no ../shared needed).
#include <gtest/gtest.h>

#include "model/tokenizer.h"
#include "model/unicode.h"

namespace llmn::model {
namespace {

// A SentencePiece vocab: <unk> <s> </s>, 256 byte tokens, then scored pieces.
Vocab tiny_spm() {
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
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0, TokenType::byte);
    const std::string sp = "\xE2\x96\x81";
    // ids 259..
    add(sp, -1, TokenType::normal);           // 259
    add("h", -2, TokenType::normal);          // 260
    add("e", -2, TokenType::normal);          // 261
    add("l", -2, TokenType::normal);          // 262
    add("o", -2, TokenType::normal);          // 263
    add("ll", -1.5f, TokenType::normal);      // 264
    add(sp + "h", -1.2f, TokenType::normal);  // 265
    add("he", -1.1f, TokenType::normal);      // 266
    add(sp + "he", -0.5f, TokenType::normal); // 267
    add("llo", -0.7f, TokenType::normal);     // 268
    add(sp + "hello", -0.1f, TokenType::normal);  // 269
    add("<|user|>", 0, TokenType::user_defined);  // 270
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    v.add_bos = true;
    v.eog_ids = {2};
    return v;
}

TEST(Tokenizer, SpmMergesByScore) {
    auto tok = Tokenizer::create(tiny_spm());
    // "▁hello" is one piece; BOS only with add_special.
    EXPECT_EQ(tok->encode("hello", true, false), (std::vector<int32_t>{1, 269}));
    EXPECT_EQ(tok->encode("hello", false, false), (std::vector<int32_t>{269}));
    // "▁hell": ▁he (best) + ll
    EXPECT_EQ(tok->encode("hell", false, false), (std::vector<int32_t>{267, 264}));
    // "x" is no piece: byte fallback <0x78> = 3 + 0x78; the space prefix is a piece.
    EXPECT_EQ(tok->encode("x", false, false), (std::vector<int32_t>{259, 3 + 0x78}));
    EXPECT_TRUE(tok->encode("", false, false).empty());
    EXPECT_EQ(tok->encode("", true, false), (std::vector<int32_t>{1}));
}

TEST(Tokenizer, SpmSpecialTokens) {
    auto tok = Tokenizer::create(tiny_spm());
    // Control tokens only with parse_special; user-defined ones always; text after a
    // special token gets the space prefix again.
    EXPECT_EQ(tok->encode("<s>hello", false, true), (std::vector<int32_t>{1, 269}));
    const auto plain = tok->encode("<s>", false, false);
    EXPECT_GT(plain.size(), 1u);
    EXPECT_EQ(tok->encode("<|user|>hello", false, false), (std::vector<int32_t>{270, 269}));
    EXPECT_TRUE(tok->is_eog(2));
    EXPECT_FALSE(tok->is_eog(1));
}

TEST(Tokenizer, SpmNoByteTokensThrows) {
    Vocab v = tiny_spm();
    v.tokens.resize(3);
    v.scores.resize(3);
    v.types.resize(3);
    v.tokens.push_back("\xE2\x96\x81");
    v.scores.push_back(0);
    v.types.push_back(TokenType::normal);
    auto tok = Tokenizer::create(std::move(v));
    EXPECT_EQ(tok->encode("", false, false), std::vector<int32_t>{});
    EXPECT_THROW(tok->encode("q", false, false), TokenizerError);
}

TEST(Tokenizer, SpmPieces) {
    auto tok = Tokenizer::create(tiny_spm());
    EXPECT_EQ(tok->token_to_piece(269), " hello");
    EXPECT_EQ(tok->token_to_piece(3 + 0x41), "A");
    EXPECT_EQ(tok->token_to_piece(1), "");
    EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
    EXPECT_EQ(tok->token_to_piece(270), "<|user|>");
}

// Byte-level BPE: the 256 byte characters, then merges.
Vocab tiny_bpe(const std::string& pre) {
    Vocab v;
    v.model = "gpt2";
    v.pre = pre;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        unicode::append_utf8(s, unicode::byte_to_cpt(static_cast<uint8_t>(b)));
        v.tokens.push_back(s);
    }
    const std::string G = "\xC4\xA0";  // 'Ġ', the byte-level space
    v.merges = {"h e", "l l", "he ll", "hell o", G + " w", "o r", G + "w or", G + "wor ld", "1 2"};
    for (const std::string& t : std::vector<std::string>{"he", "ll", "hell", "hello", G + "w", "or", G + "wor", G + "world", "12"})
        v.tokens.push_back(t);  // 256..264
    v.tokens.push_back("<|endoftext|>");  // 265
    v.types.assign(v.tokens.size(), TokenType::normal);
    v.types.back() = TokenType::control;
    v.bos_id = v.eos_id = 265;
    v.eog_ids = {265};
    return v;
}

TEST(Tokenizer, BpeMergesAndPreTokenizer) {
    auto tok = Tokenizer::create(tiny_bpe("gpt-2"));
    // "Ġwor ld" never applies: "ld" has no merge, so "Ġworld" stays Ġwor + l + d.
    EXPECT_EQ(tok->encode("hello world", false, false), (std::vector<int32_t>{259, 262, 'l', 'd'}));
    EXPECT_EQ(tok->encode("hello or", false, false), (std::vector<int32_t>{259, ' ', 261}));
    // gpt-2 keeps digit runs together: "123" -> "12" + "3".
    EXPECT_EQ(tok->encode("123", false, false), (std::vector<int32_t>{264, '3'}));  // byte tokens: id = byte
    // Special tokens: parsed only with parse_special.
    EXPECT_EQ(tok->encode("hello<|endoftext|>", false, true), (std::vector<int32_t>{259, 265}));
    EXPECT_GT(tok->encode("hello<|endoftext|>", false, false).size(), 2u);
}

TEST(Tokenizer, BpeDigitSplitsPerPreTokenizer) {
    // llama3: up to three digits per word; qwen2: one digit per word.
    auto llama3 = Tokenizer::create(tiny_bpe("llama-bpe"));
    auto qwen2 = Tokenizer::create(tiny_bpe("qwen2"));
    const auto id = [](char c) { return static_cast<int32_t>(c); };  // byte tokens: id = byte
    EXPECT_EQ(llama3->encode("1212", false, false), (std::vector<int32_t>{264, id('1'), id('2')}));
    EXPECT_EQ(qwen2->encode("12", false, false), (std::vector<int32_t>{id('1'), id('2')}));
    EXPECT_THROW(Tokenizer::create(tiny_bpe("no-such-pre")), TokenizerError);
}

TEST(Tokenizer, BpePiecesRoundTrip) {
    auto tok = Tokenizer::create(tiny_bpe("llama-bpe"));
    const std::string text = "hello world \xF0\x9F\xA6\x99 caf\xC3\xA9\n\tx";
    std::string joined;
    for (int32_t id : tok->encode(text, false, false)) joined += tok->token_to_piece(id);
    EXPECT_EQ(joined, text);
    EXPECT_EQ(tok->token_to_piece(265), "");
    EXPECT_EQ(tok->token_to_piece(265, true), "<|endoftext|>");
}

TEST(Tokenizer, UnsupportedModelThrows) {
    Vocab v = tiny_spm();
    v.model = "bert";
    EXPECT_THROW(Tokenizer::create(std::move(v)), TokenizerError);
}

TEST(Utf8StreamDecoder, HoldsBackSplitCharacters) {
    const std::string llama = "\xF0\x9F\xA6\x99";  // 4-byte emoji
    Utf8StreamDecoder d;
    EXPECT_EQ(d.push("a"), "a");
    EXPECT_EQ(d.push(llama.substr(0, 1)), "");
    EXPECT_EQ(d.push(llama.substr(1, 2)), "");
    EXPECT_EQ(d.push(llama.substr(3) + "b"), llama + "b");
    EXPECT_EQ(d.push("\xC3"), "");
    EXPECT_EQ(d.flush(), "\xC3");
    EXPECT_EQ(d.flush(), "");
    // Byte by byte through a mixed string gives it back whole.
    const std::string text = "x\xC3\xA9y\xE4\xBD\xA0" + llama + "z";
    std::string out;
    for (char c : text) out += d.push(std::string(1, c));
    out += d.flush();
    EXPECT_EQ(out, text);
}

TEST(Unicode, FlagsAndByteMapping) {
    using namespace unicode;
    EXPECT_TRUE(flags('a') & kLetter);
    EXPECT_TRUE(flags('7') & kNumber);
    EXPECT_TRUE(flags(' ') & kWhitespace);
    EXPECT_TRUE(flags(0x3000) & kWhitespace);
    EXPECT_TRUE(flags(0x4F60) & kLetter);   // CJK
    EXPECT_TRUE(flags(0x0301) & kAccentMark);
    EXPECT_TRUE(flags(0x1F999) & kSymbol);  // emoji
    EXPECT_TRUE(flags(',') & kPunctuation);
    EXPECT_EQ(flags(0x110000), 0u);
    for (int b = 0; b < 256; ++b) EXPECT_EQ(cpt_to_byte(byte_to_cpt(static_cast<uint8_t>(b))), b);
    EXPECT_EQ(byte_to_cpt(' '), 0x120u);
    EXPECT_EQ(decode_utf8("a\xFF" "b"), (std::vector<uint32_t>{'a', 0xFFFD, 'b'}));
}

}  // namespace
}  // namespace llmn::model
