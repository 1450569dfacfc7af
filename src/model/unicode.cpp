#include "model/unicode.h"

#include <algorithm>
#include <array>

namespace llmn::model::unicode {

uint32_t flags(uint32_t cpt) {
    if (cpt >= 0x110000) return 0;
    // Last range whose first code point is <= cpt.
    const uint32_t key = (cpt << 11) | 0x7FFu;
    const uint32_t* end = kFlagRanges + kFlagRangesCount;
    const uint32_t* it = std::upper_bound(kFlagRanges, end, key);
    return (it == kFlagRanges) ? 0 : (*(it - 1) & 0x7FFu);
}

namespace {

// One code point at `pos`, advancing it; false (pos untouched) when malformed.
bool next_cpt(std::string_view s, size_t& pos, uint32_t& out) {
    const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
    const uint8_t c0 = b(pos);
    const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
    if (!(c0 & 0x80)) {
        out = c0;
        pos += 1;
        return true;
    }
    if (!(c0 & 0x40)) return false;
    if (!(c0 & 0x20)) {
        if (!cont(pos + 1)) return false;
        out = ((c0 & 0x1Fu) << 6) | (b(pos + 1) & 0x3Fu);
        pos += 2;
        return true;
    }
    if (!(c0 & 0x10)) {
        if (!cont(pos + 1) || !cont(pos + 2)) return false;
        out = ((c0 & 0x0Fu) << 12) | ((b(pos + 1) & 0x3Fu) << 6) | (b(pos + 2) & 0x3Fu);
        pos += 3;
        return true;
    }
    if (!(c0 & 0x08)) {
        if (!cont(pos + 1) || !cont(pos + 2) || !cont(pos + 3)) return false;
        out = ((c0 & 0x07u) << 18) | ((b(pos + 1) & 0x3Fu) << 12) | ((b(pos + 2) & 0x3Fu) << 6) |
              (b(pos + 3) & 0x3Fu);
        pos += 4;
        return true;
    }
    return false;
}

struct ByteMaps {
    std::array<uint32_t, 256> to_cpt{};
    std::array<int16_t, 324> to_byte{};  // mapped code points are all < 324
    ByteMaps() {
        to_byte.fill(-1);
        uint32_t extra = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cpt[b] = printable ? static_cast<uint32_t>(b) : extra++;
            to_byte[to_cpt[b]] = static_cast<int16_t>(b);
        }
    }
};

const ByteMaps& byte_maps() {
    static const ByteMaps maps;
    return maps;
}

}  // namespace

std::vector<uint32_t> decode_utf8(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        uint32_t cpt = 0;
        if (next_cpt(text, pos, cpt)) {
            out.push_back(cpt);
        } else {
            out.push_back(0xFFFD);
            ++pos;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt < 0x80) {
        out += static_cast<char>(cpt);
    } else if (cpt < 0x800) {
        out += static_cast<char>(0xC0 | (cpt >> 6));
        out += static_cast<char>(0x80 | (cpt & 0x3F));
    } else if (cpt < 0x10000) {
        out += static_cast<char>(0xE0 | (cpt >> 12));
        out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cpt & 0x3F));
    } else if (cpt < 0x110000) {
        out += static_cast<char>(0xF0 | (cpt >> 18));
        out += static_cast<char>(0x80 | ((cpt >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cpt & 0x3F));
    } else {
        append_utf8(out, 0xFFFD);
    }
}

uint32_t byte_to_cpt(uint8_t byte) { return byte_maps().to_cpt[byte]; }

int cpt_to_byte(uint32_t cpt) {
    const auto& m = byte_maps().to_byte;
    return cpt < m.size() ? m[cpt] : -1;
}

std::string byte_encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(out, byte_to_cpt(static_cast<uint8_t>(c)));
    return out;
}

}  // namespace llmn::model::unicode
