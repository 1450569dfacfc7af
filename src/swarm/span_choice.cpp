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

bool should_move(const std::vector<double>& others, int current_start, int k, double own, int best_start, double ratio) {
    if (best_start == current_start) return false;
    auto uncovered_with_us_at = [&](int start) {
        int n = 0;
        for (int l = 0; l < int(others.size()); ++l)
            if (others[l] <= 0.0 && !(l >= start && l < start + k && own > 0)) ++n;
        return n;
    };
    const int unc_here = uncovered_with_us_at(current_start), unc_there = uncovered_with_us_at(best_start);
    if (unc_there != unc_here) return unc_there < unc_here;
    const double here = score(others, current_start, k).weakest;  // what our window has without us
    const double there = score(others, best_start, k).weakest;
    if (here <= 0.0) return false;  // we alone hold some of our layers: a move only trades gaps
    return there < ratio * here;
}

int layers_that_fit(uint64_t budget, uint64_t reserve, uint64_t layer_bytes, uint64_t kv_per_layer, int n_layer) {
    if (budget <= reserve) return 0;
    const uint64_t per = layer_bytes + kv_per_layer;
    if (per == 0) return n_layer;
    return int(std::min<uint64_t>(uint64_t(n_layer), (budget - reserve) / per));
}

}  // namespace llmn::swarm
