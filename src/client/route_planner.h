// Choosing a route: from the nodes a client knows of, the chain that covers
// every layer with the lowest estimated time per token.
#pragma once
#include <set>
#include <string>
#include <vector>

namespace llmn::client {

struct Candidate {
    std::string address;           // host:port
    int span_start = 0, span_end = 0;
    double seconds_per_layer = 0;  // measured or advertised compute time per token per layer (0: unknown)
    double rtt_seconds = 0;        // measured round trip to the node
    int free_sessions = 1;
};

struct PlannerConfig {
    double default_seconds_per_layer = 1e-3;  // for nodes that advertise nothing
    double busy_penalty_seconds = 1.0;         // added for a node with no free session slot
    int first_layer = 0;                       // the route starts here (the client runs the layers below: --local-layers)
};

// The route (addresses in layer order) covering [cfg.first_layer, n_layer) with the lowest
// sum over hops of (layers run x seconds_per_layer + rtt), skipping `banned`
// addresses. A hop may run only the tail of its span (from where the previous
// hop stopped). Returns an empty vector when the candidates cannot cover every layer.
std::vector<std::string> plan_route(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned = {},
                                    const PlannerConfig& cfg = {});

}  // namespace llmn::client
