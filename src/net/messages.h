// Wire messages of protocol v1 (../shared/DESIGN.md): one struct per kind with a
// single field visitor that serves encode, decode and to_string. Type ids are
// frozen. Every count and length is bounded while decoding, before allocation.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "net/errc.h"
#include "net/message_types.h"
#include "net/reach_messages.h"

namespace llmn::net {


// Plaintext, first message each way: protocol version, long-term Ed25519
// identity key, fresh X25519 (crypto_kx) key.
struct Hello {
    static constexpr MsgType type = MsgType::hello;
    uint16_t version = kProtocolVersion;
    Key32 identity{};
    Key32 ephemeral{};
    template <class V> void visit(V& v) { v(version); v(identity); v(ephemeral); }
};

// Plaintext, second message each way: signature by the identity key over the
// transcript (label, version, dialer's and listener's ephemeral keys), and the
// header of the sender's secretstream.
struct Auth {
    static constexpr MsgType type = MsgType::auth;
    Sig64 signature{};
    std::array<uint8_t, 24> stream_header{};
    Key32 swarm_proof{};  // private swarm: MAC of the transcript under the swarm key (net/swarm_key.h); zeros: no key
    template <class V> void visit(V& v) { v(signature); v(stream_header); v(swarm_proof); }
};

struct OpenSession {
    static constexpr MsgType type = MsgType::open_session;
    uint64_t session_id = 0;
    Key32 model_id{};
    uint32_t span_start = 0, span_end = 0;
    uint32_t max_tokens = 0;        // KV cache positions to reserve
    std::string next_hop;           // "host:port" of the next hop, empty on the last hop
    uint64_t next_session_id = 0;   // session id on the next hop
    uint8_t wire_dtype = uint8_t(WireDType::f16);
    Key32 prev_hop{};               // identity allowed to send STEPs besides the owner (zeros: owner only)
    Key32 next_hop_id{};            // identity the next hop must prove (zeros: whoever answers)
    uint8_t audit = 0;              // 1: sign each step's output and send the owner a RECEIPT (net/audit.h)
    template <class V> void visit(V& v) { v(session_id); v(model_id); v(span_start); v(span_end); v(max_tokens); v(next_hop); v(next_session_id); v(wire_dtype); v(prev_hop); v(next_hop_id); v(audit); }
};

// Hidden states [n_tokens, n_embd] for positions pos .. pos + n_tokens - 1.
struct Step {
    static constexpr MsgType type = MsgType::step;
    uint64_t session_id = 0;
    uint32_t pos = 0;
    uint32_t n_tokens = 0;
    uint8_t dtype = uint8_t(WireDType::f16);
    std::vector<uint8_t> hidden;
    // Audited sessions, between span hops: the sending hop's signature over
    // these bytes (net/audit.h commit_statement); zeros otherwise.
    Sig64 commit{};
    template <class V> void visit(V& v) { v(session_id); v(pos); v(n_tokens); v(dtype); v(hidden); v(commit); }
};

// The last hop's output for a step, sent back to the client.
struct Result {
    static constexpr MsgType type = MsgType::result;
    uint64_t session_id = 0;
    uint32_t pos = 0;
    uint32_t n_tokens = 0;
    uint8_t dtype = uint8_t(WireDType::f16);
    std::vector<uint8_t> hidden;
    template <class V> void visit(V& v) { v(session_id); v(pos); v(n_tokens); v(dtype); v(hidden); }
};

// Audited sessions: a hop's signed statement of one step it computed, with its
// output, sent to the session's owner (after the output went on). The owner
// re-runs sampled inputs elsewhere and compares (client/audit.h).
struct Receipt {
    static constexpr MsgType type = MsgType::receipt;
    uint64_t session_id = 0;
    uint32_t pos = 0;
    uint32_t n_tokens = 0;
    uint8_t dtype = uint8_t(WireDType::f16);
    Key32 in_digest{}, out_digest{};  // BLAKE2b-256 of the input and output bytes as on the wire
    Sig64 signature{};                // by the hop, over net::receipt_statement
    Sig64 prev_commit{};              // the previous hop's commitment that came with the input (zeros at the first hop)
    std::vector<uint8_t> hidden;      // the output
    template <class V> void visit(V& v) { v(session_id); v(pos); v(n_tokens); v(dtype); v(in_digest); v(out_digest); v(signature); v(prev_commit); v(hidden); }
};

struct Close {
    static constexpr MsgType type = MsgType::close;
    uint64_t session_id = 0;
    template <class V> void visit(V& v) { v(session_id); }
};

// session_id 0: about the link itself.
struct Error {
    static constexpr MsgType type = MsgType::error;
    uint64_t session_id = 0;
    uint16_t code = 0;  // Errc
    std::string text;
    template <class V> void visit(V& v) { v(session_id); v(code); v(text); }
};

struct Ping {
    static constexpr MsgType type = MsgType::ping;
    uint64_t nonce = 0;
    template <class V> void visit(V& v) { v(nonce); }
};

struct Pong {
    static constexpr MsgType type = MsgType::pong;
    uint64_t nonce = 0;
    template <class V> void visit(V& v) { v(nonce); }
};

// A node's reply to OPEN_SESSION once the session (and its next-hop link) is ready.
struct Opened {
    static constexpr MsgType type = MsgType::opened;
    uint64_t session_id = 0;
    uint32_t n_ctx = 0;
    template <class V> void visit(V& v) { v(session_id); v(n_ctx); }
};

// What a node serves; the listener sends it as the first sealed frame of a link.
struct NodeInfo {
    static constexpr MsgType type = MsgType::node_info;
    Key32 model_id{};
    uint32_t n_layer = 0;           // layers of the whole model
    uint32_t span_start = 0, span_end = 0;
    uint32_t free_sessions = 0;
    std::string version;            // software version
    uint32_t milli_tokens_per_s = 0;  // measured throughput of the span x 1000 (0: unknown)
    Key32 onion_key{};              // X25519 key for onion layers, fresh per node process
    uint8_t reach = 0;              // Reach: how others reach this node
    uint16_t relay_free = 0;        // relayed-node slots open here (0: does not relay)
    std::vector<uint8_t> relayed;   // identities (32 bytes each) of the nodes reachable through this one
    uint16_t relay_links = 0;       // what it gives each relayed node: spliced links,
    uint32_t relay_bytes_per_s = 0; // and bytes/s each way
    // The model's weights as a torrent (swarm/weights.h): v1 || v2 info-hash
    // (52 bytes; empty: not seeding) and the BitTorrent port at this node's IP.
    std::vector<uint8_t> torrent;
    uint16_t torrent_port = 0;
    std::string model_name;         // general.name, for listings
    std::string model_quant;        // "Q4_0", "F16", ...
    uint64_t model_bytes = 0;       // size of the GGUF
    Sig64 signature{};              // by the node's identity over all fields above (net/probe.h sign_node_info)
    template <class V> void visit(V& v) { v(model_id); v(n_layer); v(span_start); v(span_end); v(free_sessions); v(version); v(milli_tokens_per_s); v(onion_key); v(reach); v(relay_free); v(relayed); v(relay_links); v(relay_bytes_per_s); v(torrent); v(torrent_port); v(model_name); v(model_quant); v(model_bytes); v(signature); }
};

// Onion circuits (ring: client -> entry relay -> span 1 -> ... -> span N ->
// exit relay -> client). EXTEND carries the rest of the onion; the hop opens
// its layer (an OnionLayer sealed to its onion key) and passes the inner part on.
struct CircuitExtend {
    static constexpr MsgType type = MsgType::circuit_extend;
    uint64_t circuit_id = 0;        // the id this circuit has on this link
    std::vector<uint8_t> onion;
    template <class V> void visit(V& v) { v(circuit_id); v(onion); }
};
// Data along a circuit: a STEP (sealed end to end when it comes from or goes
// to the client) or a span's output.
struct CircuitCell {
    static constexpr MsgType type = MsgType::circuit_cell;
    uint64_t circuit_id = 0;
    std::vector<uint8_t> payload;
    template <class V> void visit(V& v) { v(circuit_id); v(payload); }
};
// The client, on its link to the exit hop: deliver the circuit whose last
// layer names this cookie on this link. Answered with OPENED{cookie}.
struct CircuitJoin {
    static constexpr MsgType type = MsgType::circuit_join;
    uint64_t cookie = 0;
    template <class V> void visit(V& v) { v(cookie); }
};
// From the exit hop to the joined client: every hop of the ring is set up.
struct CircuitReady {
    static constexpr MsgType type = MsgType::circuit_ready;
    uint64_t cookie = 0;
    template <class V> void visit(V& v) { v(cookie); }
};
// One hop's layer of the onion, never sent bare on a link. A hop learns only
// its neighbours (the link it came from, next_hop), its span and its keys.
struct OnionLayer {
    static constexpr MsgType type = MsgType::onion_layer;
    uint8_t role = 0;                  // 0 relay, 1 span
    std::string next_hop;              // "host:port"; empty: deliver to the client joined with next_id
    uint64_t next_id = 0;              // circuit id on the next hop, or the client's cookie
    Key32 next_hop_id{};               // identity the next hop must prove (zeros only at the exit)
    Key32 model_id{};
    uint32_t span_start = 0, span_end = 0, max_tokens = 0;
    uint8_t wire_dtype = uint8_t(WireDType::f16);
    Key32 key_in{};                    // nonzero: cells from the previous hop are sealed by the client with it
    Key32 key_out{};                   // nonzero: seal this hop's output to the client with it
    Key32 peel_key{};                  // unmasks the rest of the onion (net/onion.h)
    uint64_t expires_unix = 0;         // refused after this; replays are refused before it
    template <class V> void visit(V& v) { v(role); v(next_hop); v(next_id); v(next_hop_id); v(model_id); v(span_start); v(span_end); v(max_tokens); v(wire_dtype); v(key_in); v(key_out); v(peel_key); v(expires_unix); }
};

using Message = std::variant<Hello, Auth, OpenSession, Step, Result, Close, Error, Ping, Pong, Opened, NodeInfo, CircuitExtend,
                             CircuitCell, CircuitJoin, CircuitReady, OnionLayer, DialBack, DialBackResult, RelayRegister,
                             RelayRegistered, RelayDial, RelayIncoming, RelayAccept, RelayReady, ProbeRequest, ProbeAnswer, Receipt>;

struct DecodeLimits {
    uint32_t max_string = 1024;          // next_hop, error text
    uint32_t max_bytes = 64u << 20;      // hidden-state payload
};

// [u8 type | fields, little-endian; strings and byte vectors as u32 length + bytes].
std::vector<uint8_t> encode(const Message& m);
// Throws NetError(bad_message / truncated) for anything malformed, including trailing bytes.
Message decode(const uint8_t* data, size_t size, const DecodeLimits& limits = {});
MsgType type_of(const Message& m);
std::string to_string(const Message& m);  // one line, for logs (byte vectors as sizes)

}  // namespace llmn::net
