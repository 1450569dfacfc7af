#include "node/fault_hook.h"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace llmn::node {

std::optional<FaultHook> FaultHook::parse(const std::string& spec) {
    if (spec.empty()) return std::nullopt;
    FaultHook h;
    uint64_t seed = std::random_device{}();
    std::stringstream in(spec);
    std::string item;
    auto number = [&](const std::string& v, const std::string& what) {
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0) throw std::invalid_argument("LLM_NODE_FAULT: bad " + what + " '" + v + "'");
        return x;
    };
    while (std::getline(in, item, ',')) {
        const auto eq = item.find('=');
        const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (key == "noise") {
            h.mode_ = Mode::noise;
            h.relative_ = number(value, "noise size");
        } else if (key == "identity" && value.empty()) {
            h.mode_ = Mode::identity;
        } else if (key == "stale" && value.empty()) {
            h.mode_ = Mode::stale;
        } else if (key == "every") {
            const double n = number(value, "every");
            if (n < 1 || n > 1e9 || n != std::floor(n)) throw std::invalid_argument("LLM_NODE_FAULT: every must be a whole number >= 1");
            h.every_ = uint32_t(n);
        } else if (key == "seed") {
            seed = uint64_t(number(value, "seed"));
        } else {
            throw std::invalid_argument("LLM_NODE_FAULT: unknown item '" + item + "' (noise=R, identity, stale, every=N, seed=S)");
        }
    }
    if (h.mode_ == Mode::none) throw std::invalid_argument("LLM_NODE_FAULT names no fault (noise=R, identity or stale)");
    h.rng_.seed(seed);
    return h;
}

std::optional<FaultHook> FaultHook::from_env() {
    const char* v = std::getenv("LLM_NODE_FAULT");
    return parse(v ? v : "");
}

bool FaultHook::strike() {
    if (every_ <= 1) return true;
    return std::uniform_int_distribution<uint32_t>(0, every_ - 1)(rng_) == 0;
}

void FaultHook::add_noise(float* rows, int n_rows, int n_cols) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> noise(static_cast<size_t>(n_cols));
    for (int r = 0; r < n_rows; ++r) {
        float* x = rows + size_t(r) * n_cols;
        double xx = 0, nn = 0;
        for (int c = 0; c < n_cols; ++c) {
            noise[c] = gauss(rng_);
            xx += double(x[c]) * x[c];
            nn += double(noise[c]) * noise[c];
        }
        const float scale = nn > 0 ? float(relative_ * std::sqrt(xx / nn)) : 0.0f;
        for (int c = 0; c < n_cols; ++c) x[c] += scale * noise[c];
    }
}

void FaultHook::swap_stale(std::vector<float>& rows) {
    std::vector<float> fresh = rows;
    if (stale_.size() == rows.size()) rows = stale_;
    else for (float& v : rows) v = -v;  // nothing of that size yet: still wrong
    stale_ = std::move(fresh);
}

std::string FaultHook::describe() const {
    std::string what = mode_ == Mode::noise ? "noise of " + std::to_string(relative_) + " relative size"
                       : mode_ == Mode::identity ? "the input returned unchanged"
                                                 : "an earlier step's output returned";
    return what + (every_ > 1 ? " on 1 step in " + std::to_string(every_) : " on every step");
}

}  // namespace llmn::node
