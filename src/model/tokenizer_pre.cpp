// BPE pre-tokenizers: hand-written scanners over code points that split text exactly where
// llama.cpp's pre-tokenizer regexes do (its custom GPT-2 / Llama-3 splitters, and its
// std::regex fallback that works on one "collapsed" category byte per code point).
#include <functional>

#include "model/tokenizer_internal.h"
#include "model/unicode.h"

namespace llmn::model::detail {

namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kWhitespace;
constexpr uint32_t kOutOfRange = 0xFFFFFFFFu;

struct Text {
    std::vector<uint32_t> cpts;
    std::vector<uint32_t> flags;
};

// Lengths (in code points) of consecutive spans covering the text.
using Spans = std::vector<size_t>;

// Runs `scan(begin, end, emit)` over every span; `emit(end)` closes a word ending at `end`.
template <typename Scan>
Spans split_spans(const Spans& spans, Scan&& scan) {
    Spans out;
    size_t start = 0;
    for (size_t len : spans) {
        const size_t begin = start, end = start + len;
        start = end;
        size_t prev_end = begin;
        auto emit = [&](size_t word_end) -> size_t {
            const size_t n = word_end - prev_end;
            if (n > 0) out.push_back(n);
            prev_end = word_end;
            return n;
        };
        scan(begin, end, emit);
    }
    return out;
}

// Helpers bound to one span [.., end): code point / flags, or out-of-range markers past it.
struct SpanView {
    const Text& t;
    size_t end;
    uint32_t cpt(size_t p) const { return p < end ? t.cpts[p] : kOutOfRange; }
    uint32_t flags(size_t p) const { return p < end ? t.flags[p] : 0; }
};

bool is_contraction_letter(uint32_t c) { return c == 's' || c == 't' || c == 'm' || c == 'd'; }
uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
Spans split_gpt2(const Text& t, const Spans& spans) {
    return split_spans(spans, [&](size_t begin, size_t end, auto& emit) {
        const SpanView v{t, end};
        for (size_t pos = begin; pos < end;) {
            const uint32_t c = v.cpt(pos);
            const uint32_t f = v.flags(pos);
            if (c == '\'' && pos + 1 < end) {
                const uint32_t n1 = v.cpt(pos + 1);
                if (is_contraction_letter(n1)) {
                    pos += emit(pos + 2);
                    continue;
                }
                if (pos + 2 < end) {
                    const uint32_t n2 = v.cpt(pos + 2);
                    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                        pos += emit(pos + 3);
                        continue;
                    }
                }
            }
            const uint32_t f2 = (c == ' ') ? v.flags(pos + 1) : f;
            if (f2 & kLetter) {
                pos += (c == ' ');
                while (v.flags(pos) & kLetter) ++pos;
                emit(pos);
                continue;
            }
            if (f2 & kNumber) {
                pos += (c == ' ');
                while (v.flags(pos) & kNumber) ++pos;
                emit(pos);
                continue;
            }
            const auto other = [](uint32_t fl) { return fl != 0 && !(fl & (kWhitespace | kLetter | kNumber)); };
            if (other(f2)) {
                pos += (c == ' ');
                while (other(v.flags(pos))) ++pos;
                emit(pos);
                continue;
            }
            size_t ws = 0;
            while (v.flags(pos + ws) & kWhitespace) ++ws;
            if (ws > 1 && v.cpt(pos + ws) != kOutOfRange) {  // \s+(?!\S): leave the last one
                pos += ws - 1;
                emit(pos);
                continue;
            }
            if (ws > 0) {
                pos += ws;
                emit(pos);
                continue;
            }
            emit(++pos);
        }
    });
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*
//   |\s*[\r\n]+|\s+(?!\S)|\s+     (Llama-3 with max_digits 3; Qwen2 with 1)
Spans split_llama3(const Text& t, const Spans& spans, size_t max_digits) {
    return split_spans(spans, [&](size_t begin, size_t end, auto& emit) {
        const SpanView v{t, end};
        for (size_t pos = begin; pos < end;) {
            const uint32_t c = v.cpt(pos);
            const uint32_t f = v.flags(pos);
            if (c == '\'' && pos + 1 < end) {
                const uint32_t n1 = ascii_lower(v.cpt(pos + 1));
                if (is_contraction_letter(n1)) {
                    pos += emit(pos + 2);
                    continue;
                }
                if (pos + 2 < end) {
                    const uint32_t n2 = ascii_lower(v.cpt(pos + 2));
                    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                        pos += emit(pos + 3);
                        continue;
                    }
                }
            }
            if (!(c == '\r' || c == '\n' || (f & kNumber))) {
                if ((f & kLetter) || (v.flags(pos + 1) & kLetter)) {
                    ++pos;
                    while (v.flags(pos) & kLetter) ++pos;
                    emit(pos);
                    continue;
                }
            }
            if (f & kNumber) {
                size_t run_start = pos;
                while (v.flags(pos) & kNumber) {
                    if (++pos - run_start >= max_digits) {
                        emit(pos);
                        run_start = pos;
                    }
                }
                emit(pos);
                continue;
            }
            const uint32_t f2 = (c == ' ') ? v.flags(pos + 1) : f;
            if (!(f2 & (kWhitespace | kLetter | kNumber)) && f != 0) {
                pos += (c == ' ');
                while (v.flags(pos) != 0 && !(v.flags(pos) & (kWhitespace | kLetter | kNumber))) ++pos;
                while (v.cpt(pos) == '\r' || v.cpt(pos) == '\n') ++pos;
                emit(pos);
                continue;
            }
            size_t ws = 0, last_newline_end = 0;
            while (v.flags(pos + ws) & kWhitespace) {
                const uint32_t c2 = v.cpt(pos + ws);
                if (c2 == '\r' || c2 == '\n') last_newline_end = pos + ws + 1;
                ++ws;
            }
            if (last_newline_end > 0) {  // \s*[\r\n]+
                pos = last_newline_end;
                emit(pos);
                continue;
            }
            if (ws > 1 && v.cpt(pos + ws) != kOutOfRange) {  // \s+(?!\S)
                pos += ws - 1;
                emit(pos);
                continue;
            }
            if (ws > 0) {
                pos += ws;
                emit(pos);
                continue;
            }
            emit(++pos);
        }
    });
}

// llama.cpp's std::regex fallback sees each code point >= 128 as one byte standing for its
// category (whitespace first); these predicates answer "would the collapsed byte match".
uint32_t collapsed_category(const Text& t, size_t p) {
    if (t.flags[p] & kWhitespace) return kWhitespace;
    return t.flags[p] & unicode::kCategoryMask;
}
bool collapsed_number(const Text& t, size_t p) {
    const uint32_t c = t.cpts[p];
    return c < 128 ? (c >= '0' && c <= '9') : collapsed_category(t, p) == kNumber;
}
// [\p{P}\$\+<=>\^~\|]: ASCII punctuation and symbols except '`'; other code points by category.
bool collapsed_punct_or_symbol(const Text& t, size_t p) {
    const uint32_t c = t.cpts[p];
    if (c < 128) return c > 0x20 && c < 0x7F && c != '`' && !((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'));
    return collapsed_category(t, p) == unicode::kPunctuation;
}

// Leftmost-first regex split: `match(pos, end)` gives the match length at pos (0: none);
// text between matches becomes words too.
Spans split_matches(const Text& t, const Spans& spans, const std::function<size_t(size_t, size_t)>& match) {
    (void)t;
    return split_spans(spans, [&](size_t begin, size_t end, auto& emit) {
        size_t pos = begin;
        while (pos < end) {
            const size_t n = match(pos, end);
            if (n == 0) {
                ++pos;
                continue;
            }
            emit(pos);  // the gap before the match, if any
            pos += n;
            emit(pos);
        }
        emit(end);
    });
}

Spans split_runs(const Text& t, const Spans& spans, bool (*pred)(const Text&, size_t)) {
    return split_matches(t, spans, [&](size_t pos, size_t end) {
        size_t p = pos;
        while (p < end && pred(t, p)) ++p;
        return p - pos;
    });
}

Spans split_each(const Text& t, const Spans& spans, bool (*pred)(const Text&, size_t)) {
    return split_matches(t, spans, [&](size_t pos, size_t) -> size_t { return pred(t, pos) ? 1 : 0; });
}

Spans split_ascii_digit_triples(const Text& t, const Spans& spans) {
    const auto digit = [&](size_t p) { return t.cpts[p] >= '0' && t.cpts[p] <= '9'; };
    return split_matches(t, spans, [&](size_t pos, size_t end) -> size_t {
        return (pos + 3 <= end && digit(pos) && digit(pos + 1) && digit(pos + 2)) ? 3 : 0;
    });
}

}  // namespace

PreType pre_type_from_name(std::string_view pre) {
    const auto any = [&](std::initializer_list<std::string_view> names) {
        for (auto n : names)
            if (pre == n) return true;
        return false;
    };
    if (pre.empty() || pre == "default") return PreType::default_;
    if (any({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"}))
        return PreType::llama3;
    if (any({"dbrx", "smaug-bpe"})) return PreType::dbrx;
    if (any({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo"}))
        return PreType::gpt2;
    if (any({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "solar-open", "grok-2"}))
        return PreType::qwen2;
    if (any({"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva", "mellum2"}))
        return PreType::smollm;
    throw TokenizerError("unknown pre-tokenizer type: '" + std::string(pre) + "'");
}

std::vector<std::string> pre_tokenize(std::string_view text, PreType type) {
    Text t;
    t.cpts = unicode::decode_utf8(text);
    t.flags.resize(t.cpts.size());
    for (size_t i = 0; i < t.cpts.size(); ++i) t.flags[i] = unicode::flags(t.cpts[i]);
    Spans spans{t.cpts.size()};
    if (t.cpts.empty()) spans.clear();

    switch (type) {
        case PreType::llama3:
        case PreType::dbrx: spans = split_llama3(t, spans, 3); break;
        case PreType::qwen2: spans = split_llama3(t, spans, 1); break;
        case PreType::gpt2: spans = split_gpt2(t, spans); break;
        case PreType::smollm:
            spans = split_each(t, spans, collapsed_number);
            spans = split_gpt2(t, spans);
            break;
        case PreType::default_:
            spans = split_runs(t, spans, collapsed_punct_or_symbol);
            spans = split_gpt2(t, spans);
            spans = split_runs(t, spans, collapsed_number);
            spans = split_ascii_digit_triples(t, spans);
            break;
    }

    std::vector<std::string> words;
    words.reserve(spans.size());
    size_t start = 0;
    std::string utf8;
    for (size_t len : spans) {
        utf8.clear();
        for (size_t i = start; i < start + len; ++i) unicode::append_utf8(utf8, t.cpts[i]);
        start += len;
        words.push_back(unicode::byte_encode(utf8));
    }
    return words;
}

}  // namespace llmn::model::detail
