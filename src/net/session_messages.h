// Wire messages of onion circuits and audited sessions (part of net/messages.h,
// which holds the Message variant, the codec and the rest of protocol v1).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "net/message_types.h"

namespace llmn::net {

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
    Key32 kv_digest{};                // audit 2: BLAKE2b-256 of the step's KV rows (zeros otherwise)
    std::vector<uint8_t> kv;          // audit 2: those rows (engine::KvCache::copy_rows)
    template <class V> void visit(V& v) { v(session_id); v(pos); v(n_tokens); v(dtype); v(in_digest); v(out_digest); v(signature); v(prev_commit); v(hidden); v(kv_digest); v(kv); }
};

}  // namespace llmn::net
