// A node that joins the swarm by itself: it measures this machine, finds the
// other nodes of its model on the DHT, serves the window of layers where the
// swarm is weakest (or a forced span), announces itself and publishes its
// signed record, and re-checks periodically, moving only for a clear gain.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "node/node.h"
#include "swarm/dht.h"

namespace llmn::node {

struct SwarmNodeConfig {
    NodeConfig node;                         // model, listen, key, threads, caps (span chosen here)
                                             // node.swarm_key also keys the DHT (dht.swarm_key is overwritten)
    std::optional<std::pair<int, int>> forced_span;
    uint64_t max_memory = 0;                 // bytes for weights + cache; 0 = what the machine has
    swarm::Dht::Config dht;
    bool relay_only = false;                 // forward onion circuits only (span 0:0 in the record)
    std::chrono::seconds recheck{60};        // how often the span choice is revisited
    std::chrono::milliseconds lookup_timeout{3000};
    std::string advertise_host;              // host other nodes reach us at (default: the listen host)
};

class SwarmNode {
public:
    explicit SwarmNode(SwarmNodeConfig cfg);
    ~SwarmNode();
    // Serves until stop(); returns after the node and the DHT have shut down.
    void run();
    void stop();
    // For logs and tests: the span being served now and the serving address.
    std::pair<int, int> span() const { return {span_start_.load(), span_end_.load()}; }
    std::string address() const;

private:
    std::pair<int, int> choose_span(int layers_wanted, const std::string& self_address, std::optional<std::pair<int, int>> current);

    SwarmNodeConfig cfg_;
    std::unique_ptr<swarm::Dht> dht_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> span_start_{0}, span_end_{0};
    std::unique_ptr<Node> node_;
    std::string address_;
    double seconds_per_layer_ = 0;
    int layers_wanted_ = 1;
};

}  // namespace llmn::node
