// Tokenizer factory, special-token splitting and the streaming UTF-8 decoder.
#include "model/tokenizer.h"

#include <algorithm>

#include "model/tokenizer_internal.h"

namespace llmn::model {

uint32_t TokenAttr::from_type(TokenType t) {
    switch (t) {
        case TokenType::unknown: return unknown;
        case TokenType::unused: return unused;
        case TokenType::normal: return normal;
        case TokenType::control: return control;
        case TokenType::user_defined: return user_defined;
        case TokenType::byte: return byte;
        default: return undefined;
    }
}

namespace detail {

void prepare_vocab(Vocab& vocab) {
    const size_t n = vocab.tokens.size();
    if (!vocab.scores.empty() && vocab.scores.size() < n)
        throw TokenizerError("tokenizer: fewer scores (" + std::to_string(vocab.scores.size()) + ") than tokens (" +
                             std::to_string(n) + ")");
    if (!vocab.types.empty() && vocab.types.size() < n)
        throw TokenizerError("tokenizer: fewer token types (" + std::to_string(vocab.types.size()) +
                             ") than tokens (" + std::to_string(n) + ")");
    for (size_t i = 0; i < n; ++i)
        if (vocab.tokens[i].empty()) vocab.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
    if (vocab.attrs.size() != n) {
        vocab.attrs.assign(n, TokenAttr::normal);
        if (!vocab.types.empty())
            for (size_t i = 0; i < n; ++i) vocab.attrs[i] = TokenAttr::from_type(vocab.types[i]);
    }
}

VocabIndex::VocabIndex(const Vocab& vocab) : vocab_(vocab) {
    // Same container and insertion order as llama.cpp, so iteration-order-dependent choices agree.
    for (int32_t i = 0; i < vocab.size(); ++i) to_id_.emplace(vocab.tokens[i], i);
    constexpr uint32_t kSpecial = TokenAttr::control | TokenAttr::user_defined | TokenAttr::unknown;
    for (int32_t i = 0; i < vocab.size(); ++i)
        if (vocab.attrs[i] & kSpecial) specials_.push_back(i);
    std::sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
        return vocab_.tokens[a].size() > vocab_.tokens[b].size();
    });
}

int32_t VocabIndex::find(std::string_view text) const {
    auto it = to_id_.find(std::string(text));
    return it == to_id_.end() ? -1 : it->second;
}

namespace {
bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
}  // namespace

std::vector<Fragment> VocabIndex::partition(std::string_view text, bool parse_special) const {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (int32_t id : specials_) {
        const uint32_t attr = vocab_.attrs[id];
        if (!parse_special && (attr & (TokenAttr::control | TokenAttr::unknown))) continue;
        const std::string& tok = vocab_.tokens[id];
        if (tok.empty()) continue;
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t base = f.offset, len = f.length;
            bool consumed = false;  // whether the fragment was split at least once
            while (true) {
                const size_t match = text.substr(0, base + len).find(tok, base);
                if (match == std::string_view::npos) break;
                consumed = true;
                if (match > base) {
                    size_t left_len = match - base;
                    if (attr & TokenAttr::lstrip)
                        while (left_len > 0 && is_c_space(text[base + left_len - 1])) --left_len;
                    if (left_len > 0) next.push_back({-1, base, left_len});
                }
                next.push_back({id, 0, 0});
                const size_t after = match + tok.size();
                if (after < base + len) {
                    size_t right_off = after, right_len = base + len - after;
                    if (attr & TokenAttr::rstrip)
                        while (right_len > 0 && is_c_space(text[right_off])) {
                            ++right_off;
                            --right_len;
                        }
                    base = right_off;
                    len = right_len;
                } else {
                    len = 0;
                    break;
                }
            }
            if (!consumed) {
                next.push_back(f);
            } else if (len > 0) {
                next.push_back({-1, base, len});
            }
        }
        frags.swap(next);
    }
    return frags;
}

}  // namespace detail

std::unique_ptr<Tokenizer> Tokenizer::create(Vocab vocab) {
    detail::prepare_vocab(vocab);
    if (vocab.model == "llama") return std::make_unique<detail::SpmTokenizer>(std::move(vocab));
    if (vocab.model == "gpt2") return std::make_unique<detail::BpeTokenizer>(std::move(vocab));
    throw TokenizerError("unsupported tokenizer model '" + vocab.model + "' (supported: llama, gpt2)");
}

void Tokenizer::push_bos(std::vector<int32_t>& out) const {
    if (vocab_.bos_id < 0) throw TokenizerError("tokenizer: add_bos is set but the vocab has no BOS token");
    out.push_back(vocab_.bos_id);
}

void Tokenizer::push_eos(std::vector<int32_t>& out) const {
    if (vocab_.eos_id < 0) throw TokenizerError("tokenizer: add_eos is set but the vocab has no EOS token");
    out.push_back(vocab_.eos_id);
}

bool Tokenizer::special_piece(int32_t id, bool special, std::string& out) const {
    out.clear();
    if (id < 0 || id >= vocab_.size()) return true;
    const uint32_t attr = vocab_.attrs[id];
    if (attr & (TokenAttr::unknown | TokenAttr::control)) {
        if (special) out = vocab_.tokens[id];
        return true;
    }
    if (attr & TokenAttr::user_defined) {
        out = vocab_.tokens[id];
        return true;
    }
    return false;
}

bool Tokenizer::is_eog(int32_t id) const {
    return id >= 0 && std::find(vocab_.eog_ids.begin(), vocab_.eog_ids.end(), id) != vocab_.eog_ids.end();
}

namespace {

// Length of the longest prefix of `s` that does not end inside an incomplete UTF-8 sequence.
size_t complete_prefix(const std::string& s) {
    const size_t n = s.size();
    // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto c = static_cast<uint8_t>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
        size_t need = 1;
        if ((c & 0xE0) == 0xC0) need = 2;
        else if ((c & 0xF0) == 0xE0) need = 3;
        else if ((c & 0xF8) == 0xF0) need = 4;
        return need > back ? n - back : n;
    }
    return n;  // only continuation bytes at the end: nothing to wait for
}

}  // namespace

std::string Utf8StreamDecoder::push(std::string_view bytes) {
    pending_.append(bytes.data(), bytes.size());
    const size_t keep_from = complete_prefix(pending_);
    std::string out = pending_.substr(0, keep_from);
    pending_.erase(0, keep_from);
    return out;
}

std::string Utf8StreamDecoder::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace llmn::model
