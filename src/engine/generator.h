// The generation loop shared by `generate`, `chat` and the API server: sample,
// stop at end-of-generation, a stop string, the token budget or a full
// context, and stream the text as it becomes final (whole UTF-8 characters,
// never a piece of a possible stop string).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"
#include "model/tokenizer.h"

namespace llmn::engine {

struct GenerateOptions {
    int max_tokens = 128;
    std::vector<std::string> stop;  // the text ends before the first one found
    bool ignore_eos = false;
};

struct GenerateResult {
    int n_prompt = 0;
    int n_gen = 0;
    // "stop" (end of generation or a stop string), "length" (token budget or
    // context full) or "cancelled" (on_text returned false).
    std::string finish_reason;
    std::string text;  // everything streamed
    double prompt_seconds = 0, gen_seconds = 0;
};

// Evaluates `prompt` on a fresh or continuing session, then generates. on_text
// receives each newly final piece of text (possibly empty calls are skipped);
// returning false stops the generation. on_token (optional) sees every id.
GenerateResult generate(Session& session, const model::Tokenizer& tok, Sampler& sampler, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opts, const std::function<bool(const std::string&)>& on_text,
                        const std::function<void(int32_t)>& on_token = nullptr);

// Holds back text that could still become a stop string; pure, for tests.
class StopStringFilter {
public:
    explicit StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
    // Adds text; returns what is now safe to emit. stopped() turns true once a
    // stop string has been seen (the text before it is returned, the rest dropped).
    std::string push(const std::string& text);
    // The text still held back (at the end of the generation it is final).
    std::string flush();
    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace llmn::engine
