// The node daemon: serves one layer span of one model to many sessions over
// secure links. All session and link state lives on one io_context thread; the
// forward passes run on a compute thread that batches the pending steps of
// concurrent sessions into one pass and posts the results back.
//
// Per session the node keeps a KV cache; a STEP's output goes to the next hop
// named at OPEN_SESSION (server-to-server push), or back to the session's
// owner as RESULT on the last hop. A malformed or hostile frame closes only
// the link it came on; sessions owned by a closed link are dropped.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "net/swarm_key.h"

namespace llmn::engine {
class SpanWeights;
}

namespace llmn::node {

struct NodeConfig {
    bool relay_only = false;                   // forward onion circuits only: no layers loaded, no sessions
    std::string model_path;
    int span_start = 0, span_end = 0;          // [start, end); end 0 = all layers
    std::string listen = "127.0.0.1:0";        // host:port (port 0 picks one)
    std::string key_file;                      // identity; empty = a fresh one in memory
    int threads = 0;                           // compute threads (0 = every core)
    int max_sessions = 64;
    uint64_t max_memory = 8ull << 30;          // bytes of KV cache over all sessions
    int max_ctx = 4096;                        // cap on one session's positions
    std::chrono::seconds idle_timeout{300};    // a session with no step for this long is dropped
    uint32_t max_frame = 64u << 20;
    double tokens_per_s = 0;                   // measured throughput of the span, advertised in NODE_INFO
    std::optional<net::SwarmKey> swarm_key{};  // private swarm: every link (in and out) must prove it
};

class Node {
public:
    // Loads the span's weights (only its tensors are touched) and binds the
    // listening socket. Throws on a bad model, span or address.
    explicit Node(NodeConfig cfg);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Serves until stop() (from any thread or a signal handler's thread).
    void run();
    void stop();

    // "ip:port" actually bound, and the node's identity as hex.
    std::string listen_address() const;
    std::string node_id() const;
    // The span this node serves (its model and [start, end)), e.g. to warm its pages.
    const engine::SpanWeights& weights() const;

    struct Stats {
        uint64_t sessions_opened = 0, steps = 0, batches = 0, tokens = 0, link_errors = 0;
        int active_sessions = 0;
    };
    Stats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace llmn::node
