// GPT-2 style byte-level BPE (tokenizer.ggml.model = "gpt2"), following llama.cpp's
// llm_tokenizer_bpe: pre-tokenize into byte-encoded words, then inside each word merge the
// adjacent pair with the lowest merge rank until no listed pair remains.
#include <queue>

#include "model/tokenizer_internal.h"
#include "model/unicode.h"

namespace llmn::model::detail {

namespace {

struct Symbol {
    int prev;
    int next;
    size_t offset;  // into the word
    size_t n;       // bytes; 0 once merged into its left neighbour
};

struct Bigram {
    int left;
    int right;
    std::string text;
    int rank;
};

// Lowest rank first; on equal ranks the leftmost pair.
struct BigramLess {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

std::string rank_key(const std::string& a, const std::string& b) {
    std::string key;
    key.reserve(a.size() + b.size() + 1);
    key.append(a);
    key.push_back('\0');
    key.append(b);
    return key;
}

}  // namespace

BpeTokenizer::BpeTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)), index_(vocab_) {
    pre_ = pre_type_from_name(vocab_.pre);
    ignore_merges_ = pre_ == PreType::llama3;
    ranks_.reserve(vocab_.merges.size());
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
        const std::string& m = vocab_.merges[i];
        std::string first, second;
        const size_t pos = m.find(' ', 1);
        if (pos != std::string::npos) {
            first = m.substr(0, pos);
            second = m.substr(pos + 1);
        }
        ranks_.emplace(rank_key(first, second), static_cast<int>(i));  // the first listing wins
    }
}

int BpeTokenizer::rank(const std::string& left, const std::string& right) const {
    auto it = ranks_.find(rank_key(left, right));
    return it == ranks_.end() ? -1 : it->second;
}

void BpeTokenizer::encode_word(const std::string& word, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
    const auto text_of = [&](const Symbol& s) { return word.substr(s.offset, s.n); };
    const auto add_bigram = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        std::string a = text_of(symbols[left]), b = text_of(symbols[right]);
        const int r = rank(a, b);
        if (r < 0) return;
        queue.push({left, right, a + b, r});
    };

    size_t offset = 0;
    if (ignore_merges_ && index_.find(word) >= 0) {
        symbols.push_back({-1, -1, 0, word.size()});
        offset = word.size();
    }
    int idx = 0;
    while (offset < word.size()) {
        const size_t n = std::min(word.size() - offset, unicode::utf8_len(word[offset]));
        offset += n;
        symbols.push_back({idx - 1, offset == word.size() ? -1 : idx + 1, offset - n, n});
        ++idx;
    }
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(i - 1, i);
    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = symbols[bg.left];
        Symbol& r = symbols[bg.right];
        if (l.n == 0 || r.n == 0) continue;
        if (text_of(l) + text_of(r) != bg.text) continue;  // stale
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = bg.left;
        add_bigram(l.prev, bg.left);
        add_bigram(bg.left, l.next);
    }
    for (const Symbol& s : symbols) {
        if (s.n == 0) continue;
        const std::string str = text_of(s);
        const int32_t id = index_.find(str);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        // Not a token: each byte on its own when that is a token, else dropped (as llama.cpp does).
        for (char c : str) {
            const int32_t b = index_.find(std::string(1, c));
            if (b >= 0) out.push_back(b);
        }
    }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<int32_t> out;
    const auto frags = index_.partition(text, parse_special);
    if (add_special && vocab_.add_bos) {
        push_bos(out);
    }
    for (const auto& f : frags) {
        if (f.token >= 0) {
            out.push_back(f.token);
            continue;
        }
        for (const std::string& word : pre_tokenize(text.substr(f.offset, f.length), pre_)) encode_word(word, out);
    }
    if (add_special && vocab_.add_eos) push_eos(out);
    return out;
}

std::string BpeTokenizer::token_to_piece(int32_t id, bool special) const {
    if (std::string piece; special_piece(id, special, piece)) return piece;
    const uint32_t attr = vocab_.attrs[id];
    const std::string& text = vocab_.tokens[id];
    if (attr & TokenAttr::normal) {
        std::string out;
        for (uint32_t cpt : unicode::decode_utf8(text)) {
            const int b = unicode::cpt_to_byte(cpt);
            if (b >= 0) {
                out += static_cast<char>(b);
            } else {  // not a byte-level character: keep it as it is
                unicode::append_utf8(out, cpt);
            }
        }
        return out;
    }
    return {};
}

}  // namespace llmn::model::detail
