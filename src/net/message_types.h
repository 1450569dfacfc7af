// The small vocabulary every wire message uses: type ids (frozen), key and
// signature arrays, the hidden-state dtype and how a node can be reached.
#pragma once
#include <array>
#include <cstdint>

namespace llmn::net {

inline constexpr uint16_t kProtocolVersion = 5;  // 2: pinned next hops, fixed-size onions; 3: NODE_INFO names the weights torrent;
                                                 // 4: audited sessions (STEP commitments, RECEIPT); 5: kernel sets
                                                 // (NODE_INFO.isa/isa_set, OPEN_SESSION.isa)

enum class MsgType : uint8_t {
    hello = 1, auth = 2, open_session = 3, step = 4, result = 5, close = 6, error = 7, ping = 8, pong = 9,
    opened = 10, node_info = 11, circuit_extend = 12, circuit_cell = 13, circuit_join = 14, circuit_ready = 15,
    onion_layer = 16, dial_back = 17, dial_back_result = 18, relay_register = 19, relay_registered = 20,
    relay_dial = 21, relay_incoming = 22, relay_accept = 23, relay_ready = 24, probe_request = 25, probe_answer = 26, receipt = 27,
};

using Key32 = std::array<uint8_t, 32>;
using Sig64 = std::array<uint8_t, 64>;

// Element type of hidden states on the wire.
enum class WireDType : uint8_t { f32 = 0, f16 = 1 };

// How other machines reach a node (NODE_INFO, `llm-node swarm`, the status page).
enum class Reach : uint8_t {
    unknown = 0,  // not checked (no peer could dial back yet)
    direct = 1,   // a peer dialed back to the advertised address
    mapped = 2,   // reached through a port the home router mapped (UPnP / NAT-PMP)
    relayed = 3,  // not reachable: served through a relay ("id@relay" addresses)
};
const char* reach_name(uint8_t r);

}  // namespace llmn::net
