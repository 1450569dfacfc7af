#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace llmn::engine {

std::string StopStringFilter::push(const std::string& text) {
    if (stopped_) return {};
    held_ += text;
    size_t cut = std::string::npos;
    for (const std::string& s : stops_)
        if (!s.empty()) cut = std::min(cut, held_.find(s));
    if (cut != std::string::npos) {
        stopped_ = true;
        std::string out = held_.substr(0, cut);
        held_.clear();
        return out;
    }
    // Keep the longest tail that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const std::string& s : stops_)
        for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n)
            if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
                keep = n;
                break;
            }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string StopStringFilter::flush() {
    std::string out;
    out.swap(held_);
    return stopped_ ? std::string() : out;
}

GenerateResult generate(Session& session, const model::Tokenizer& tok, Sampler& sampler, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opts, const std::function<bool(const std::string&)>& on_text,
                        const std::function<void(int32_t)>& on_token) {
    if (prompt.empty()) throw std::invalid_argument("empty prompt");
    using clock = std::chrono::steady_clock;
    GenerateResult r;
    r.n_prompt = int(prompt.size());
    if (opts.ignore_eos) sampler.set_excluded(tok.vocab().eog_ids);
    std::vector<int32_t> history = prompt;
    std::vector<float> logits;
    const auto t0 = clock::now();
    session.eval(prompt, logits);
    const auto t1 = clock::now();
    r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

    model::Utf8StreamDecoder utf8;
    StopStringFilter stops(opts.stop);
    bool cancelled = false;
    auto emit = [&](const std::string& s) {
        if (s.empty() || cancelled) return;
        r.text += s;
        if (!on_text(s)) cancelled = true;
    };
    r.finish_reason = "length";
    while (r.n_gen < opts.max_tokens) {
        const int32_t id = sampler.sample(logits.data(), session.n_vocab(), history);
        if (!opts.ignore_eos && tok.is_eog(id)) {
            r.finish_reason = "stop";
            break;
        }
        ++r.n_gen;
        history.push_back(id);
        if (on_token) on_token(id);
        emit(stops.push(utf8.push(tok.token_to_piece(id))));
        if (stops.stopped()) {
            r.finish_reason = "stop";
            break;
        }
        if (cancelled) break;
        if (r.n_gen == opts.max_tokens || session.n_past() >= session.n_ctx()) break;
        session.eval({id}, logits);
    }
    if (!stops.stopped()) {
        emit(stops.push(utf8.flush()));
        emit(stops.flush());
    }
    if (stops.stopped()) r.finish_reason = "stop";
    if (cancelled) r.finish_reason = "cancelled";
    r.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

}  // namespace llmn::engine
