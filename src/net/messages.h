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
#include "net/session_messages.h"

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
    uint8_t audit = 0;              // 1: sign each step's output and send the owner a RECEIPT (net/audit.h);
                                    // 2: the receipts carry the step's KV rows too, and replays are taken
    // 0: the node's own kernels; else 1 + tensor::Isa: run this session's steps
    // with those (a replica re-running a hop's steps with the hop's kernels).
    uint8_t isa = 0;
    template <class V> void visit(V& v) { v(session_id); v(model_id); v(span_start); v(span_end); v(max_tokens); v(next_hop); v(next_session_id); v(wire_dtype); v(prev_hop); v(next_hop_id); v(audit); v(isa); }
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
    // A replica's replay (sessions opened with audit 2, from the owner only):
    // the audited hop's KV rows of positions [kv_from, pos) (engine::KvCache
    // layout), loaded before the step runs. Empty otherwise.
    uint32_t kv_from = 0;
    std::vector<uint8_t> kv;
    template <class V> void visit(V& v) { v(session_id); v(pos); v(n_tokens); v(dtype); v(hidden); v(commit); v(kv_from); v(kv); }
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
    uint8_t isa = 0;                // 1 + tensor::Isa its sessions run on (0: unknown)
    uint8_t isa_set = 0;            // bit (1 << tensor::Isa) for each kernel set it can run on request
    Sig64 signature{};              // by the node's identity over all fields above (net/probe.h sign_node_info)
    template <class V> void visit(V& v) { v(model_id); v(n_layer); v(span_start); v(span_end); v(free_sessions); v(version); v(milli_tokens_per_s); v(onion_key); v(reach); v(relay_free); v(relayed); v(relay_links); v(relay_bytes_per_s); v(torrent); v(torrent_port); v(model_name); v(model_quant); v(model_bytes); v(isa); v(isa_set); v(signature); }
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
