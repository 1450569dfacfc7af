#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace llmn::engine {

namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

// Higher logit first; equal logits keep the lower id first, so every ordering
// below is fully determined by the input.
template <class C>
bool better(const C& a, const C& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

uint64_t draw_random_seed() {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ uint64_t(rd());
}

void check_config(const SamplerConfig& c) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("sampler: " + what); };
    if (std::isnan(c.temp)) fail("temp is NaN");
    if (!(c.top_p >= 0.0f && c.top_p <= 1.0f)) fail("top_p " + std::to_string(c.top_p) + " is outside [0, 1]");
    if (!(c.min_p >= 0.0f && c.min_p <= 1.0f)) fail("min_p " + std::to_string(c.min_p) + " is outside [0, 1]");
    if (!(c.repeat_penalty > 0.0f) || std::isinf(c.repeat_penalty))
        fail("repeat_penalty " + std::to_string(c.repeat_penalty) + " must be positive and finite");
    if (c.repeat_last_n < -1) fail("repeat_last_n " + std::to_string(c.repeat_last_n) + " is below -1");
}

}  // namespace

Sampler::Sampler(SamplerConfig config) : config_(config) {
    check_config(config_);
    reset();
}

void Sampler::reset() {
    seed_ = config_.seed == random_seed ? draw_random_seed() : config_.seed;
    rng_.seed(seed_);
}

void Sampler::set_excluded(std::vector<int32_t> ids) { excluded_ = std::move(ids); }

double Sampler::next_uniform() {
    // 53 random bits scaled into [0, 1): independent of the library's distributions.
    return double(rng_() >> 11) * 0x1.0p-53;
}

void Sampler::load_candidates(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history) {
    work_.assign(logits, logits + n_vocab);
    for (float& l : work_) {
        if (std::isnan(l)) l = neg_inf;
        else if (l == std::numeric_limits<float>::infinity()) l = std::numeric_limits<float>::max();
    }

    // Repetition penalty, once per distinct id in the window (as llama.cpp does).
    if (config_.repeat_penalty != 1.0f && config_.repeat_last_n != 0 && !history.empty()) {
        size_t n = config_.repeat_last_n < 0 ? history.size()
                                             : std::min(history.size(), size_t(config_.repeat_last_n));
        window_.assign(history.end() - ptrdiff_t(n), history.end());
        std::sort(window_.begin(), window_.end());
        window_.erase(std::unique(window_.begin(), window_.end()), window_.end());
        for (int32_t id : window_) {
            if (id < 0 || id >= n_vocab) continue;
            float& l = work_[size_t(id)];
            if (l == neg_inf) continue;
            l = l <= 0.0f ? l * config_.repeat_penalty : l / config_.repeat_penalty;
        }
    }

    for (int32_t id : excluded_)
        if (id >= 0 && id < n_vocab) work_[size_t(id)] = neg_inf;
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history) {
    if (logits == nullptr) throw std::invalid_argument("sampler: logits is null");
    if (n_vocab <= 0) throw std::invalid_argument("sampler: n_vocab " + std::to_string(n_vocab) + " is not positive");
    load_candidates(logits, n_vocab, history);

    if (config_.temp <= 0.0f) {
        // Greedy: strict > keeps the lowest id among equal maxima.
        int32_t best = -1;
        float best_logit = neg_inf;
        for (int32_t id = 0; id < n_vocab; ++id) {
            float l = work_[size_t(id)];
            if (l != neg_inf && (best < 0 || l > best_logit)) {
                best = id;
                best_logit = l;
            }
        }
        if (best < 0) throw std::invalid_argument("sampler: no token is left to sample (all excluded or -inf)");
        return best;
    }

    auto by_rank = [](const Candidate& a, const Candidate& b) { return better(a, b); };
    bool sorted = false;
    cand_.clear();
    const bool use_top_k = config_.top_k > 0 && config_.top_k < n_vocab;
    if (use_top_k) {
        // top-k in one pass: a heap of the k best so far, worst on top, so most
        // ids cost one comparison with the current k-th best.
        const size_t k = size_t(config_.top_k);
        for (int32_t id = 0; id < n_vocab; ++id) {
            Candidate c{id, work_[size_t(id)]};
            if (c.logit == neg_inf) continue;
            if (cand_.size() < k) {
                cand_.push_back(c);
                std::push_heap(cand_.begin(), cand_.end(), by_rank);
            } else if (better(c, cand_.front())) {
                std::pop_heap(cand_.begin(), cand_.end(), by_rank);
                cand_.back() = c;
                std::push_heap(cand_.begin(), cand_.end(), by_rank);
            }
        }
        std::sort(cand_.begin(), cand_.end(), by_rank);
        sorted = true;
    } else {
        for (int32_t id = 0; id < n_vocab; ++id)
            if (work_[size_t(id)] != neg_inf) cand_.push_back({id, work_[size_t(id)]});
    }
    if (cand_.empty()) throw std::invalid_argument("sampler: no token is left to sample (all excluded or -inf)");

    // top-p: smallest best-first prefix whose probability mass reaches top_p.
    // Without top-k the candidates are ordered lazily: the next best block is
    // selected (nth_element) and sorted only while the mass is still short.
    if (config_.top_p < 1.0f && cand_.size() > 1) {
        double max_l = cand_.front().logit, total = 0.0;
        for (const Candidate& c : cand_) max_l = std::max(max_l, double(c.logit));
        for (const Candidate& c : cand_) total += std::exp(double(c.logit) - max_l);
        const double target = double(config_.top_p) * total;
        const size_t n = cand_.size();
        size_t ready = sorted ? n : 0;  // cand_[0, ready) is in final order
        size_t keep = n;
        double cum = 0.0;
        for (size_t i = 0; i < n; ++i) {
            if (i == ready) {
                size_t next = std::min(n, std::max<size_t>(ready * 4, 256));
                if (next < n) std::nth_element(cand_.begin() + ptrdiff_t(ready), cand_.begin() + ptrdiff_t(next - 1),
                                               cand_.end(), by_rank);
                std::sort(cand_.begin() + ptrdiff_t(ready), cand_.begin() + ptrdiff_t(next), by_rank);
                ready = next;
            }
            cum += std::exp(double(cand_[i].logit) - max_l);
            if (cum >= target) {
                keep = i + 1;
                break;
            }
        }
        cand_.resize(keep);
        sorted = true;
    }

    // min-p: p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
    if (config_.min_p > 0.0f && cand_.size() > 1) {
        float max_l = cand_.front().logit;
        if (!sorted)
            for (const Candidate& c : cand_) max_l = std::max(max_l, c.logit);
        double threshold = double(max_l) + std::log(double(config_.min_p));
        cand_.erase(std::remove_if(cand_.begin(), cand_.end(),
                                   [&](const Candidate& c) { return double(c.logit) < threshold; }),
                    cand_.end());
    }

    // Temperature, softmax and one draw.
    double max_l = double(cand_.front().logit);
    for (const Candidate& c : cand_) max_l = std::max(max_l, double(c.logit));
    const double inv_temp = 1.0 / double(config_.temp);
    probs_.resize(cand_.size());
    double total = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i)
        total += probs_[i] = std::exp((double(cand_[i].logit) - max_l) * inv_temp);

    double target = next_uniform() * total;
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        cum += probs_[i];
        if (target < cum) return cand_[i].id;
    }
    // Rounding left the target at the very top: take the last token with mass.
    for (size_t i = cand_.size(); i-- > 0;)
        if (probs_[i] > 0.0) return cand_[i].id;
    return cand_.front().id;
}

}  // namespace llmn::engine
