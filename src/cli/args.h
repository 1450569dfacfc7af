// A small command-line parser with llama.cpp-style flags. Unknown flags,
// missing values and malformed numbers throw UsageError (exit status 2).
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmn::cli {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Flag {
    std::vector<std::string> names;  // "-m", "--model"
    bool takes_value = true;
    std::string help;
};

class Args {
public:
    // Parses argv[first..argc) against `flags`; the first name of each flag is its key.
    Args(int argc, char** argv, int first, std::vector<Flag> flags);

    bool has(const std::string& key) const { return values_.count(key) > 0; }
    std::string str(const std::string& key, const std::string& fallback = "") const;
    int64_t integer(const std::string& key, int64_t fallback) const;
    double number(const std::string& key, double fallback) const;
    const std::vector<std::string>& positional() const { return positional_; }
    // "  -m, --model VALUE   help" lines for usage messages.
    std::string help() const;

private:
    std::vector<Flag> flags_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> positional_;
};

// JSON string literal of raw bytes (invalid UTF-8 bytes become U+FFFD).
std::string json_string(const std::string& bytes);

}  // namespace llmn::cli
