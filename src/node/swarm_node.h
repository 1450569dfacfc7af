// A node that joins the swarm by itself: it measures this machine, finds the
// other nodes of its model on the DHT, serves the window of layers where the
// swarm is weakest (or a forced span), makes itself reachable, announces itself
// and publishes its signed record, and re-checks periodically, moving only for
// a clear gain.
//
// Reachable address (swarm_node_reach.cpp): --advertise HOST:PORT when given;
// else the listen address when it is a loopback or public one; else the
// external IP the DHT learnt (BEP 42, or the router) with the port the home
// router mapped (UPnP / NAT-PMP) or the serving port. A peer then dials back
// (net/reach.h). A node that no peer can reach serves through a relay chosen
// from the swarm ("id@relay" address) and says so on stderr in words a user can
// act on; it is never announced with 0.0.0.0 or an address no one reaches.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "node/node.h"
#include "swarm/dht.h"
#include "swarm/weights.h"

namespace llmn::node {

struct SwarmNodeConfig {
    NodeConfig node;                         // model, listen, key, threads, caps (span chosen here)
                                             // node.swarm_key also keys the DHT (dht.swarm_key is overwritten)
    std::optional<std::pair<int, int>> forced_span;
    uint64_t max_memory = 0;                 // bytes for weights + cache; 0 = what the machine has
    swarm::Dht::Config dht;
    bool relay_only = false;                 // forward onion circuits only (span 0:0 in the record)
    std::chrono::seconds recheck{60};        // how often the span choice is revisited (after two early re-checks)
    std::chrono::milliseconds lookup_timeout{3000};
    std::chrono::milliseconds settle_timeout{5000};  // at start: wait this long for the DHT before choosing a span
    std::string advertise;                   // "host:port" others reach us at (a port forwarded by hand)
    std::string relay;                       // "host:port" of the relay to use when unreachable (default: chosen from the swarm)
    // Weights (swarm/weights.h): a node seeds the file it serves from; with
    // fetch_model (no local file) it fetches the header and then only its
    // span's tensors from the swarm, before serving or moving to a span.
    std::optional<net::Key32> fetch_model;
    std::string weights_dir;                 // "" = ~/.cache/llm-node/weights
    uint64_t max_download = 0;               // bytes/s, 0 = no cap
    std::chrono::seconds fetch_timeout{900};
    swarm::WeightsProgress fetch_progress;   // called while downloading (the CLI draws a bar)
};

class SwarmNode {
public:
    explicit SwarmNode(SwarmNodeConfig cfg);
    ~SwarmNode();
    // Serves until stop(); returns after the node and the DHT have shut down.
    void run();
    void stop();
    // For logs and tests: the span being served now and the advertised address.
    std::pair<int, int> span() const { return {span_start_.load(), span_end_.load()}; }
    std::string address() const;

private:
    std::pair<int, int> choose_span(int layers_wanted, std::optional<std::pair<int, int>> current);
    // Downloads and verifies the tensors of `span` when the model was fetched (no-op otherwise).
    void fetch_span(std::pair<int, int> span);
    // swarm_node_reach.cpp
    void settle_reachability();
    bool serve_through_relay(const std::vector<std::string>& peers);
    bool keep_reachable();
    bool may_publish() const;  // the record's address is one others can use
    std::vector<std::string> other_peers();

    SwarmNodeConfig cfg_;
    std::unique_ptr<swarm::Dht> dht_;
    std::unique_ptr<swarm::Weights> weights_;  // after dht_: destroyed first
    std::optional<swarm::TorrentId> torrent_;
    std::string last_fetch_json_;  // figures of the last span fetch, for the next stdout line
    std::atomic<bool> stopping_{false};
    std::atomic<int> span_start_{0}, span_end_{0};
    std::unique_ptr<Node> node_;
    std::optional<net::Identity> identity_;
    net::Key32 model_id_{};
    std::string bound_;       // the serving socket's "ip:port"
    std::string advertised_;  // what the record and the DHT carry
    uint8_t reach_ = 0;       // net::Reach
    std::string relay_;       // while relayed
    std::chrono::steady_clock::time_point next_reach_check_{};
    double seconds_per_layer_ = 0;
    int layers_wanted_ = 1;
    std::mt19937 rng_{std::random_device{}()};
};

}  // namespace llmn::node
