#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
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

// Generation on a session that may rewind (engine::Rewind): tokens are drawn
// as soon as their logits come back, but their text goes out only once the
// position those logits came from is verified; a rewind drops the tokens drawn
// from positions that turned out wrong and draws them again, with the
// sampler's state of that moment, so the output is what a single process gives.
GenerateResult generate(Session& session, const model::Tokenizer& tok, Sampler& sampler, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opts, const std::function<bool(const std::string&)>& on_text,
                        const std::function<void(int32_t)>& on_token) {
    if (prompt.empty()) throw std::invalid_argument("empty prompt");
    using clock = std::chrono::steady_clock;
    GenerateResult r;
    r.n_prompt = int(prompt.size());
    if (opts.ignore_eos) sampler.set_excluded(tok.vocab().eog_ids);
    const int base = session.n_past();  // a continuing session: earlier turns are final
    const size_t np = prompt.size();
    std::vector<int32_t> toks = prompt;  // toks[q] is at position base + q
    std::deque<Sampler::State> drawn;    // the sampler's state before toks[first_drawn + i] was drawn
    size_t first_drawn = np;
    std::optional<Sampler::State> before_eos;
    std::vector<float> logits;

    model::Utf8StreamDecoder utf8;
    StopStringFilter stops(opts.stop);
    bool cancelled = false;
    size_t emitted = np;  // toks[np, emitted) went out
    auto emit = [&](const std::string& s) {
        if (s.empty() || cancelled) return;
        r.text += s;
        if (!on_text(s)) cancelled = true;
    };
    // toks[q] is final once the position it was drawn from, base + q - 1, is.
    auto emit_final = [&] {
        const size_t upto = std::min(toks.size(), size_t(std::max(0, session.verified() - base + 1)));
        while (emitted < upto && !cancelled && !stops.stopped()) {
            const int32_t id = toks[emitted++];
            if (on_token) on_token(id);
            emit(stops.push(utf8.push(tok.token_to_piece(id))));
        }
        while (first_drawn < emitted && !drawn.empty()) {  // never rewound past: not needed again
            drawn.pop_front();
            ++first_drawn;
        }
    };
    auto rewind = [&](const Rewind& rw) {
        const int kept = rw.pos() - base;  // positions still good, relative to this call
        if (kept < 0) throw std::runtime_error(std::string("an earlier turn turned out wrong: ") + rw.what());
        // Text that went out stays (sampled verification finds some wrong positions
        // after their text was released): those tokens are evaluated again, not redrawn.
        const size_t keep = std::max({np, size_t(kept) + 1, emitted});
        if (keep < toks.size()) {
            sampler.restore(drawn.at(keep - first_drawn));
            drawn.resize(keep - first_drawn);
            toks.resize(keep);
        } else if (before_eos) {
            sampler.restore(*before_eos);
        }
        before_eos.reset();
    };
    // Evaluates the tokens the session does not hold yet, rewinding as it is told.
    auto catch_up = [&] {
        for (;;) {
            const size_t have = size_t(session.n_past() - base);
            try {
                if (have < toks.size()) session.eval(std::vector<int32_t>(toks.begin() + long(have), toks.end()), logits);
                return;
            } catch (const Rewind& rw) {
                rewind(rw);
            }
        }
    };

    const auto t0 = clock::now();
    catch_up();
    const auto t1 = clock::now();
    r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
    for (;;) {
        while (!cancelled && !stops.stopped() && toks.size() - np < size_t(std::max(0, opts.max_tokens))) {
            const Sampler::State state = sampler.state();
            const int32_t id = sampler.sample(logits.data(), session.n_vocab(), toks);
            if (!opts.ignore_eos && tok.is_eog(id)) {
                before_eos = state;
                break;
            }
            drawn.push_back(state);
            toks.push_back(id);
            emit_final();
            if (cancelled || stops.stopped()) break;
            if (toks.size() - np == size_t(opts.max_tokens) || session.n_past() >= session.n_ctx()) break;
            catch_up();
            emit_final();
        }
        if (cancelled || stops.stopped()) break;
        try {
            session.settle();
        } catch (const Rewind& rw) {
            rewind(rw);
            catch_up();
            continue;
        }
        emit_final();
        break;
    }
    r.n_gen = int(emitted - np);
    if (!stops.stopped()) {
        emit(stops.push(utf8.flush()));
        emit(stops.flush());
    }
    r.finish_reason = cancelled ? "cancelled" : (stops.stopped() || before_eos) ? "stop" : "length";
    r.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

}  // namespace llmn::engine
