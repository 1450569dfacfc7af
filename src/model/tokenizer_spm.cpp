// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), following llama.cpp's
// llm_tokenizer_spm: the text is split into UTF-8 characters, then the adjacent pair whose
// concatenation is the highest-scoring vocab entry is merged until no pair is a token;
// leftovers fall back to <0xXX> byte tokens.
#include <cstdlib>
#include <map>
#include <queue>

#include "model/tokenizer_internal.h"
#include "model/unicode.h"

namespace llmn::model::detail {

namespace {

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

struct Symbol {
    int prev;
    int next;
    size_t offset;  // into the text being tokenized
    size_t n;       // bytes; 0 once merged into its left neighbour
};

struct Bigram {
    int left;
    int right;
    float score;
    size_t size;
};

// Highest score first; on equal scores the leftmost pair.
struct BigramLess {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

class SpmSession {
public:
    SpmSession(const Vocab& vocab, const VocabIndex& index, const std::string& text)
        : vocab_(vocab), index_(index), text_(text) {}

    template <typename ByteFallback>
    void run(std::vector<int32_t>& out, ByteFallback&& byte_token) {
        size_t offs = 0;
        int idx = 0;
        while (offs < text_.size()) {
            const size_t n = std::min(unicode::utf8_len(text_[offs]), text_.size() - offs);
            offs += n;
            symbols_.push_back({idx - 1, offs == text_.size() ? -1 : idx + 1, offs - n, n});
            ++idx;
        }
        for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add(i - 1, i);
        while (!queue_.empty()) {
            const Bigram bg = queue_.top();
            queue_.pop();
            Symbol& l = symbols_[bg.left];
            Symbol& r = symbols_[bg.right];
            if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) symbols_[r.next].prev = bg.left;
            try_add(l.prev, bg.left);
            try_add(bg.left, l.next);
        }
        if (symbols_.empty()) return;
        for (int i = 0; i != -1; i = symbols_[i].next) resegment(symbols_[i], out, byte_token);
    }

private:
    std::string piece(const Symbol& s, size_t n) const { return text_.substr(s.offset, n); }

    void try_add(int left, int right) {
        if (left == -1 || right == -1) return;
        const std::string joined = piece(symbols_[left], symbols_[left].n + symbols_[right].n);
        const int32_t id = index_.find(joined);
        if (id < 0 || id >= vocab_.size()) return;
        const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[id];
        queue_.push({left, right, score, joined.size()});
        rev_merge_[joined] = {left, right};
    }

    template <typename ByteFallback>
    void resegment(const Symbol& s, std::vector<int32_t>& out, ByteFallback& byte_token) {
        const std::string str = piece(s, s.n);
        const int32_t id = index_.find(str);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
        auto it = rev_merge_.find(str);
        if (it == rev_merge_.end()) {
            for (char c : str) out.push_back(byte_token(static_cast<uint8_t>(c)));
            return;
        }
        // Copy the indices: recursion may not touch rev_merge_, but stay safe.
        const auto [a, b] = it->second;
        resegment(symbols_[a], out, byte_token);
        resegment(symbols_[b], out, byte_token);
    }

    const Vocab& vocab_;
    const VocabIndex& index_;
    const std::string& text_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue_;
    std::map<std::string, std::pair<int, int>> rev_merge_;
};

}  // namespace

SpmTokenizer::SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)), index_(vocab_) {}

int32_t SpmTokenizer::byte_to_token(uint8_t byte) const {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char name[7] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>', 0};
    int32_t id = index_.find(name);
    if (id >= 0) return id;
    id = index_.find(std::string(1, static_cast<char>(byte)));
    if (id >= 0) return id;
    throw TokenizerError("tokenizer: the vocab has no token for byte 0x" + std::string(name + 3, 2) +
                         " (no <0xXX> byte-fallback tokens)");
}

void SpmTokenizer::encode_text(const std::string& text, std::vector<int32_t>& out) const {
    SpmSession session(vocab_, index_, text);
    session.run(out, [this](uint8_t b) { return byte_to_token(b); });
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<int32_t> out;
    const auto frags = index_.partition(text, parse_special);
    const bool bos = add_special && vocab_.add_bos;
    if (bos) {
        push_bos(out);
    }
    bool prev_special = true;  // the first text fragment gets the space prefix too
    for (const auto& f : frags) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
            continue;
        }
        std::string piece;
        if (vocab_.add_space_prefix && prev_special) piece = " ";
        piece.append(text.substr(f.offset, f.length));
        std::string escaped;
        escaped.reserve(piece.size() + 8);
        for (char c : piece) {
            if (c == ' ') escaped += kSpaceMark;
            else escaped += c;
        }
        encode_text(escaped, out);
        prev_special = false;
    }
    if (add_special && vocab_.add_eos) push_eos(out);
    return out;
}

std::string SpmTokenizer::token_to_piece(int32_t id, bool special) const {
    if (std::string piece; special_piece(id, special, piece)) return piece;
    const uint32_t attr = vocab_.attrs[id];
    const std::string& text = vocab_.tokens[id];
    if (attr & TokenAttr::normal) {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
            if (text.compare(i, 3, kSpaceMark) == 0) {
                out += ' ';
                i += 3;
            } else {
                out += text[i++];
            }
        }
        return out;
    }
    if (attr & TokenAttr::byte) {
        if (text.size() >= 5) return std::string(1, static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16)));
        return {};
    }
    return {};
}

}  // namespace llmn::model::detail
