// Code point helpers for the tokenizers: UTF-8 decoding the way llama.cpp does it
// (an invalid byte becomes U+FFFD), category flags (from unicode_tables.cpp) and
// GPT-2's byte <-> printable-character mapping.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmn::model::unicode {

// Category groups (one per code point) plus the White_Space property.
enum Flag : uint32_t {
    kUndefined = 1u << 0,
    kNumber = 1u << 1,       // \p{N}
    kLetter = 1u << 2,       // \p{L}
    kSeparator = 1u << 3,    // \p{Z}
    kAccentMark = 1u << 4,   // \p{M}
    kPunctuation = 1u << 5,  // \p{P}
    kSymbol = 1u << 6,       // \p{S}
    kControl = 1u << 7,      // \p{C}
    kCategoryMask = 0xFFu,
    kWhitespace = 1u << 8,   // \s
};

extern const uint32_t kFlagRanges[];
extern const size_t kFlagRangesCount;

// Flags of one code point; 0 for values past U+10FFFF.
uint32_t flags(uint32_t cpt);

// Byte length of the UTF-8 sequence that starts with `lead` (1 for stray bytes).
inline size_t utf8_len(char lead) {
    static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[static_cast<uint8_t>(lead) >> 4];
}

// Code points of `text`; each byte that does not start a well-formed sequence gives U+FFFD.
std::vector<uint32_t> decode_utf8(std::string_view text);
// Appends the UTF-8 encoding of `cpt` (U+FFFD for values past U+10FFFF).
void append_utf8(std::string& out, uint32_t cpt);

// GPT-2 byte-level BPE: every byte maps to one printable code point.
uint32_t byte_to_cpt(uint8_t byte);
// Inverse of byte_to_cpt; returns -1 for a code point no byte maps to.
int cpt_to_byte(uint32_t cpt);
// Each byte of `bytes` as its mapped code point, UTF-8 encoded.
std::string byte_encode(std::string_view bytes);

}  // namespace llmn::model::unicode
