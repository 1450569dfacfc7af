#include "client/route_planner.h"

#include <limits>

namespace llmn::client {

std::vector<std::string> plan_route(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned,
                                    const PlannerConfig& cfg) {
    // Shortest path over layer boundaries first_layer..n_layer: a candidate is an edge from
    // any boundary l in [start, end) to end, costing its time for layers [l, end).
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> best(n_layer + 1, inf);
    std::vector<int> via(n_layer + 1, -1), from(n_layer + 1, -1);
    if (cfg.first_layer < 0 || cfg.first_layer >= n_layer) return {};
    best[cfg.first_layer] = 0;
    for (int l = cfg.first_layer; l < n_layer; ++l) {
        if (best[l] == inf) continue;
        for (size_t c = 0; c < candidates.size(); ++c) {
            const Candidate& k = candidates[c];
            if (banned.count(k.address) || k.span_start > l || k.span_end <= l || k.span_end > n_layer) continue;
            const double per_layer = k.seconds_per_layer > 0 ? k.seconds_per_layer : cfg.default_seconds_per_layer;
            const double cost = best[l] + per_layer * (k.span_end - l) + k.rtt_seconds +
                                (k.free_sessions <= 0 ? cfg.busy_penalty_seconds : 0.0);
            if (cost < best[k.span_end]) {
                best[k.span_end] = cost;
                via[k.span_end] = int(c);
                from[k.span_end] = l;
            }
        }
    }
    if (best[n_layer] == inf) return {};
    std::vector<std::string> route;
    for (int l = n_layer; l > cfg.first_layer; l = from[l]) route.insert(route.begin(), candidates[via[l]].address);
    return route;
}

}  // namespace llmn::client
