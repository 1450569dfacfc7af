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
#include <vector>

#include "net/identity.h"
#include "net/swarm_key.h"

namespace llmn::engine {
class SpanWeights;
}

namespace llmn::node {
struct NodeReach;
}

namespace llmn::node {

struct NodeConfig {
    bool relay_only = false;                   // forward onion circuits only: no layers loaded, no sessions
    std::string model_path;
    int span_start = 0, span_end = 0;          // [start, end); end 0 = all layers
    std::string listen = "127.0.0.1:0";        // host:port (port 0 picks one)
    std::string key_file;                      // identity; empty = a fresh one in memory
    std::optional<net::Identity> identity{};   // given: used instead of key_file
    int threads = 0;                           // compute threads (0 = every core)
    int max_sessions = 64;
    uint64_t max_memory = 8ull << 30;          // bytes of KV cache over all sessions
    int max_ctx = 4096;                        // cap on one session's positions
    std::chrono::seconds idle_timeout{300};    // a session with no step for this long is dropped
    uint32_t max_frame = 64u << 20;
    double tokens_per_s = 0;                   // measured throughput of the span, advertised in NODE_INFO
    std::optional<net::SwarmKey> swarm_key{};  // private swarm: every link (in and out) must prove it
    // Relaying for nodes behind NAT (net/relay.h): nodes this one relays at once
    // (0: none), spliced links per relayed node, bytes/s per relayed node and direction.
    int relay_slots = 8;
    int relay_links_per_node = 16;
    uint32_t relay_bytes_per_s = 16u << 20;
    // Outgoing links through a relay first try a direct connection for this long.
    std::chrono::milliseconds punch_window{1500};
    // Let any peer's OPEN_SESSION and onion EXTENDs name next hops on private
    // networks (RFC 1918, fc00::/7) although this node listens on a public or
    // wildcard address (peers on a private network always may). Loopback,
    // link-local and names never.
    bool allow_private_hops = false;
    // The weights torrent this node seeds (NODE_INFO.torrent, 52 bytes) and its
    // BitTorrent port; empty / 0: none.
    std::vector<uint8_t> torrent;
    uint16_t torrent_port = 0;
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
    // How others reach this node (net::Reach), sent in NODE_INFO. A relayed node relays no one.
    void set_reach(uint8_t reach);
    // Serve through a relay (net/reach.h RelayClient): keep a link to `relay`
    // ("host:port") and accept dialers through it. Thread-safe.
    void use_relay(const std::string& relay);
    struct RelayState {
        bool registered = false;
        std::string relay, observed, error;  // relay address; our address as it sees us; why it failed
        uint32_t max_links = 0, max_bytes_per_s = 0;
    };
    RelayState relay_state() const;  // asks the io thread (waits up to 1 s)
    struct RelayedUse {
        std::string node_id;  // hex
        int links = 0;
        uint64_t bytes = 0, refused = 0;
    };
    std::vector<RelayedUse> relayed_nodes() const;  // the nodes this one relays (io thread, <= 1 s)
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
    std::unique_ptr<NodeReach> reach_;  // node_reach.h; destroyed before impl_ (its io)
};

}  // namespace llmn::node
