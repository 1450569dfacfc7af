#include "cli/args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace llmn::cli {

Args::Args(int argc, char** argv, int first, std::vector<Flag> flags) : flags_(std::move(flags)) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() < 2 || a[0] != '-' || a == "--") {
            positional_.push_back(a);
            continue;
        }
        std::string value;
        bool inline_value = false;
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            inline_value = true;
        }
        const Flag* f = nullptr;
        for (const Flag& fl : flags_)
            for (const std::string& n : fl.names)
                if (n == a) f = &fl;
        if (!f) throw UsageError("unknown option '" + a + "'");
        if (f->takes_value) {
            if (!inline_value) {
                if (i + 1 >= argc) throw UsageError("option '" + a + "' needs a value");
                value = argv[++i];
            }
        } else if (inline_value) {
            throw UsageError("option '" + a + "' takes no value");
        } else {
            value = "1";
        }
        values_[f->names.front()] = value;
    }
}

std::string Args::str(const std::string& key, const std::string& fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
}

int64_t Args::integer(const std::string& key, int64_t fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || errno != 0)
        throw UsageError("option '" + key + "' needs an integer, got '" + it->second + "'");
    return v;
}

double Args::number(const std::string& key, double fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0') throw UsageError("option '" + key + "' needs a number, got '" + it->second + "'");
    return v;
}

std::string Args::help() const {
    std::string out;
    for (const Flag& f : flags_) {
        std::string names;
        for (const std::string& n : f.names) names += (names.empty() ? "" : ", ") + n;
        if (f.takes_value) names += " VALUE";
        char line[256];
        std::snprintf(line, sizeof line, "  %-28s %s\n", names.c_str(), f.help.c_str());
        out += line;
    }
    return out;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        // Length of a valid UTF-8 sequence starting here, or 0.
        int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (len > 1) {
            if (i + len > s.size()) len = 0;
            for (int k = 1; k < len; ++k)
                if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 0;
        }
        if (len == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (len > 1) {
            out.append(s, i, len);
            i += len;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
        ++i;
    }
    return out + "\"";
}

}  // namespace llmn::cli
