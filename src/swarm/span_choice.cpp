#include "swarm/span_choice.h"

#include <algorithm>
#include <limits>

namespace llmn::swarm {

std::vector<double> layer_coverage(const std::vector<SpanRecord>& records, int n_layer) {
    std::vector<double> cov(std::max(0, n_layer), 0.0);
    for (const SpanRecord& r : records)
        for (int l = std::max(0, r.span_start); l < std::min(n_layer, r.span_end); ++l) cov[l] += std::max(0.0, r.tokens_per_s);
    return cov;
}

namespace {
struct WindowScore {
    double weakest, total;
};
WindowScore score(const std::vector<double>& cov, int start, int k) {
    WindowScore s{std::numeric_limits<double>::infinity(), 0.0};
    for (int l = start; l < start + k; ++l) s.weakest = std::min(s.weakest, cov[l]), s.total += cov[l];
    return s;
}
}  // namespace

int choose_span_start(const std::vector<double>& cov, int k) {
    const int n = int(cov.size());
    k = std::clamp(k, 1, std::max(1, n));
    int best = 0;
    WindowScore bs = score(cov, 0, k);
    for (int s = 1; s + k <= n; ++s) {
        const WindowScore w = score(cov, s, k);
        if (w.weakest < bs.weakest || (w.weakest == bs.weakest && w.total < bs.total)) best = s, bs = w;
    }
    return best;
}

bool should_move(const std::vector<double>& cov, int current_start, int k, double own, int best_start, double ratio) {
    if (best_start == current_start) return false;
    std::vector<double> without = cov;
    for (int l = current_start; l < current_start + k && l < int(without.size()); ++l) without[l] = std::max(0.0, without[l] - own);
    const double here = score(without, current_start, k).weakest;  // what our window has without us
    const double there = score(without, best_start, k).weakest;
    // Leaving would uncover our layers: stay. Otherwise move only for a clear gain.
    if (here <= 0.0) return false;
    return there < ratio * here;
}

int layers_that_fit(uint64_t budget, uint64_t reserve, uint64_t layer_bytes, uint64_t kv_per_layer, int n_layer) {
    if (budget <= reserve) return 0;
    const uint64_t per = layer_bytes + kv_per_layer;
    if (per == 0) return n_layer;
    return int(std::min<uint64_t>(uint64_t(n_layer), (budget - reserve) / per));
}

}  // namespace llmn::swarm
