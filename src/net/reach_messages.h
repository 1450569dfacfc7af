// Messages that let nodes behind NAT serve the swarm (see net/relay.h):
// a dial-back check of the advertised address, and relaying, where a node
// that cannot be reached keeps a link to a reachable relay R and R splices
// each dialer's TCP connection onto a fresh connection from the node. The
// link then runs end to end through R, which forwards sealed bytes only.
#pragma once
#include <cstdint>
#include <string>

#include "net/message_types.h"

namespace llmn::net {

// Asker -> peer: connect to the IP this link comes from, at `port`, and check
// that the node there proves `identity`. Never another IP: no third party.
struct DialBack {
    static constexpr MsgType type = MsgType::dial_back;
    uint16_t port = 0;
    Key32 identity{};
    template <class V> void visit(V& v) { v(port); v(identity); }
};
struct DialBackResult {
    static constexpr MsgType type = MsgType::dial_back_result;
    uint8_t reachable = 0;
    std::string observed;  // the asker's "ip:port" as this peer sees the link
    std::string text;      // why not, in words
    template <class V> void visit(V& v) { v(reachable); v(observed); v(text); }
};

// Node -> relay, on the link it keeps open: relay me (I am the link's identity).
struct RelayRegister {
    static constexpr MsgType type = MsgType::relay_register;
    uint32_t flags = 0;  // none defined yet
    template <class V> void visit(V& v) { v(flags); }
};
struct RelayRegistered {
    static constexpr MsgType type = MsgType::relay_registered;
    uint8_t ok = 0;
    std::string observed;         // the node's address as the relay sees it
    std::string text;             // why not
    uint32_t max_links = 0;       // spliced links the relay gives this node at once
    uint32_t max_bytes_per_s = 0; // each way, over all of them
    template <class V> void visit(V& v) { v(ok); v(observed); v(text); v(max_links); v(max_bytes_per_s); }
};
// Dialer -> relay, on a fresh link: splice this connection to node `target`.
struct RelayDial {
    static constexpr MsgType type = MsgType::relay_dial;
    Key32 target{};
    uint32_t punch_ms = 0;  // both ends try a direct connection for this long (0: no punching)
    template <class V> void visit(V& v) { v(target); v(punch_ms); }
};
// Relay -> node, on its kept link: a dialer waits; connect to me and accept `token`.
struct RelayIncoming {
    static constexpr MsgType type = MsgType::relay_incoming;
    uint64_t token = 0;
    template <class V> void visit(V& v) { v(token); }
};
// Node -> relay, on the fresh link it opened for `token`.
struct RelayAccept {
    static constexpr MsgType type = MsgType::relay_accept;
    uint64_t token = 0;
    template <class V> void visit(V& v) { v(token); }
};
// Relay -> both ends: from the next byte on, this connection is spliced to the
// other end. `peer_observed` is the other end's address as the relay sees it
// (for hole punching); start punching after `delay_ms`, which evens out the two
// ends' distances to the relay.
struct RelayReady {
    static constexpr MsgType type = MsgType::relay_ready;
    std::string peer_observed;
    uint32_t delay_ms = 0;
    uint32_t punch_ms = 0;  // the dialer's punching window (0: none)
    template <class V> void visit(V& v) { v(peer_observed); v(delay_ms); v(punch_ms); }
};

// Client -> any node: look at these nodes for me (so that a client building
// an onion circuit never contacts a span node itself). Comma-separated
// addresses, at most 64; answered with one PROBE_ANSWER per node that answered
// and a last one with an empty address.
struct ProbeRequest {
    static constexpr MsgType type = MsgType::probe_request;
    uint64_t request_id = 0;
    std::string addresses;
    template <class V> void visit(V& v) { v(request_id); v(addresses); }
};
// What a probed node said: its identity (proved in the handshake with the
// prober) and its NODE_INFO, signed by that identity, so the prober can leave
// a node out but cannot alter what it says.
struct ProbeAnswer {
    static constexpr MsgType type = MsgType::probe_answer;
    uint64_t request_id = 0;
    std::string address;            // empty: the last answer
    Key32 identity{};
    uint32_t rtt_us = 0;            // as the prober measured it
    std::vector<uint8_t> node_info; // the encoded NODE_INFO
    template <class V> void visit(V& v) { v(request_id); v(address); v(identity); v(rtt_us); v(node_info); }
};

}  // namespace llmn::net
