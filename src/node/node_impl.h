// Node's state and its handlers (internal to node/): sessions and links in
// node.cpp, onion circuits in node_circuits.cpp. Everything here runs on the
// node's io thread except the compute queue's callback, which posts to it.
#pragma once
#include <asio.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/layer_span.h"
#include "net/link.h"
#include "net/onion.h"
#include "node/compute_queue.h"
#include "node/fault_hook.h"
#include "node/node.h"
#include "node/node_guard.h"
#include "node/node_reach.h"

namespace llmn::node {

using asio::awaitable;
using Clock = std::chrono::steady_clock;

void log_line(const std::string& s);

struct Node::Impl {
    NodeConfig cfg;
    std::shared_ptr<const engine::Model> model;
    std::shared_ptr<const engine::SpanWeights> weights;
    net::Key32 model_id{};
    std::string model_name, model_quant;  // for NODE_INFO listings
    net::Identity identity;
    net::LinkOptions link_opts;
    asio::io_context io{1};
    asio::ip::tcp::acceptor acceptor{io};
    std::unique_ptr<ComputeQueue> compute;

    struct Session {
        uint64_t id = 0;
        std::shared_ptr<engine::KvCache> cache;
        std::weak_ptr<net::Link> owner;
        net::Key32 prev_hop{};
        std::shared_ptr<net::Link> next;  // null on the last hop
        std::string next_addr;
        uint64_t next_session_id = 0;
        net::WireDType wire = net::WireDType::f16;
        int first = 0, last = 0;  // the session's layers, relative to the node's span
        uint64_t in_compute_bytes = 0;      // hidden states of its steps waiting for or in the compute thread
        const net::Link* step_link = nullptr;  // the link its last step came on (back-pressure)
        Clock::time_point last_active;
        Clock::time_point last_step{};  // of a step (not an open): who is generating now
        bool audit = false;             // OPEN_SESSION.audit: commitments and receipts (net/audit.h)
        bool audit_kv = false;          // OPEN_SESSION.audit 2: receipts carry KV rows, replays are taken
        int isa = -1;                   // OPEN_SESSION.isa - 1: the kernels its steps run on (-1: the node's)
        // What on_done needs of each step in flight (audited sessions, or a fault hook).
        struct InStep {
            uint32_t pos = 0;
            net::Key32 in_digest{};
            net::Sig64 prev_commit{};
            bool fault = false;
        };
        std::deque<InStep> in_steps;
    };
    std::unordered_map<uint64_t, Session> sessions;
    // Capacity promised to opens that are still dialing their next hop, so that
    // opens racing through that await cannot all pass the caps.
    int reserved_sessions = 0;
    uint64_t reserved_kv = 0;
    // Onion circuits through this node, by the id the previous hop uses. A span
    // circuit also has a Session under the same id.
    struct Circuit {
        std::weak_ptr<net::Link> prev;
        std::shared_ptr<net::Link> next;  // null at the exit: deliver to `client`
        std::weak_ptr<net::Link> client;
        uint64_t next_id = 0;             // id on the next link, or the client's cookie
        bool span = false;
        net::Key32 key_in{}, key_out{};   // end-to-end keys with the client (zero: none)
        uint64_t seq_in = 0, seq_out = 0;
    };
    std::unordered_map<uint64_t, Circuit> circuits;
    struct Joined {
        std::weak_ptr<net::Link> link;
        Clock::time_point at;
    };
    std::unordered_map<uint64_t, Joined> joined;  // cookie -> client link, until its circuit is ready
    net::OnionKeys onion = net::OnionKeys::generate();
    ReplayCache replays;
    // Outgoing links to next hops, by address and expected identity; idle ones close.
    struct NextLink {
        std::shared_ptr<net::Link> link;
        Clock::time_point last_used;
    };
    std::map<std::string, NextLink> next_links;
    DialPolicy dial_policy;
    std::shared_ptr<HandshakeLimiter> handshakes = std::make_shared<HandshakeLimiter>(16, 100);
    struct Inbound {
        std::weak_ptr<net::Link> link;
        Clock::time_point last_message;
    };
    std::unordered_map<const net::Link*, Inbound> inbound;  // accepted links, for the silence check
    uint64_t kv_bytes = 0;
    Stats stats;
    std::atomic<bool> stopping{false};
    NodeReach* reach = nullptr;  // relaying, dial-back and our own relay (node_reach.h)
    std::optional<FaultHook> fault = FaultHook::from_env();  // tests only: wrong outputs on purpose

    // Takes capacity for one session before an await and gives it back after.
    struct Reservation {
        Impl& n;
        uint64_t kv;
        Reservation(Impl& node, uint64_t bytes) : n(node), kv(bytes) {
            ++n.reserved_sessions;
            n.reserved_kv += kv;
        }
        ~Reservation() {
            --n.reserved_sessions;
            n.reserved_kv -= kv;
        }
        Reservation(const Reservation&) = delete;
        Reservation& operator=(const Reservation&) = delete;
    };

    // --- node.cpp: links, sessions, steps
    void send(const std::shared_ptr<net::Link>& link, net::Message m);
    void send_error(const std::shared_ptr<net::Link>& link, uint64_t sid, net::Errc code, const std::string& text);
    void drop_session(uint64_t sid);
    net::NodeInfo info() const;
    awaitable<std::shared_ptr<net::Link>> next_link(const std::string& addr, const net::Key32& expected, const net::Link& asked_by);
    void close_idle_next_links(Clock::time_point now);
    std::string session_refusal(uint64_t sid, const net::Key32& mid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire,
                                net::Errc& code, uint64_t* kv_need = nullptr) const;
    Session& add_session(const std::shared_ptr<net::Link>& owner, uint64_t sid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire);
    awaitable<void> on_open(const std::shared_ptr<net::Link>& link, const net::OpenSession& o);
    void on_step(const std::shared_ptr<net::Link>& link, net::Step& st);
    bool others_stepping(const Session& self) const;
    void on_done(ComputeDone done);
    // --- node_audit.cpp: audited sessions and the test fault hook
    bool note_step_in(Session& s, const std::shared_ptr<net::Link>& from, const net::Step& st);
    std::optional<Session::InStep> take_step_in(Session& s, int pos);
    bool replay_fits(const Session& s, const net::Link& from, const net::Step& st) const;
    void send_receipt(const Session& s, const std::shared_ptr<net::Link>& owner, const Session::InStep& in, ComputeDone& done,
                      uint8_t dtype, const net::Key32& out_digest, std::vector<uint8_t> hidden);
    awaitable<bool> wait_for_room(const std::shared_ptr<net::Link>& link);
    awaitable<void> serve_link(asio::ip::tcp::socket socket);
    awaitable<void> accept_loop();
    awaitable<void> idle_sweep();
    void close_silent_links(Clock::time_point now);
    void link_closed(const std::shared_ptr<net::Link>& link);

    // --- node_circuits.cpp: onion circuits
    awaitable<void> on_extend(const std::shared_ptr<net::Link>& link, net::CircuitExtend& ext);
    void on_join(const std::shared_ptr<net::Link>& link, const net::CircuitJoin& j);
    void on_cell(const std::shared_ptr<net::Link>& link, net::CircuitCell& cell);
    std::shared_ptr<net::Link> circuit_target(const Circuit& c);
    void circuit_output(Circuit& c, net::Step out);
    void close_circuit(uint64_t cid, bool forward);
    void back_error(const std::shared_ptr<net::Link>& from, uint64_t id, net::Errc code, const std::string& text);
    void next_link_lost(const std::shared_ptr<net::Link>& link);
    void expire_joins(Clock::time_point now);

    // --- node_directory.cpp: probing for clients
    int probe_requests = 0;
    void on_probe_request(const std::shared_ptr<net::Link>& link, const net::ProbeRequest& req);
};

}  // namespace llmn::node
