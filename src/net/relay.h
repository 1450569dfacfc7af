// Relaying for nodes that cannot be reached (behind NAT with no mapped port).
//
// The relayed node N keeps a secure link to a reachable relay R and registers
// (RELAY_REGISTER). Others reach N at the address "<N's 64-hex id>@<R host:port>":
//
//   dialer D --link--> R: RELAY_DIAL{N}      R --kept link--> N: RELAY_INCOMING{token}
//   N --new link--> R: RELAY_ACCEPT{token}   R --> D and N: RELAY_READY{other's address}
//
// After RELAY_READY, R stops reading both connections and copies their bytes
// both ways (the splice). D and N then run the ordinary link handshake through
// it, D expecting N's identity, so R forwards sealed frames it can neither read
// nor alter, and cannot pose as N. Before that handshake D may try a direct TCP
// connection to N (hole punching, LinkOptions::punch_window): both ends connect
// from the local port R saw to the other's observed address at once; D then
// sends one byte on the splice, 'D' (the link runs on the punched connection)
// or 'R' (it runs through R).
//
// R caps what it gives: nodes relayed at once, spliced links per node, and
// bytes per second per node (RelayLimits). Everything runs on one io thread.
#pragma once
#include <asio.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/link.h"

namespace llmn::net {

struct RelayedAddress {
    Key32 node{};       // the relayed node's identity
    std::string relay;  // "host:port" of the relay
};
// "ID@host:port" with ID 64 hex digits, else nullopt.
std::optional<RelayedAddress> parse_relayed(const std::string& address);
std::string relayed_address(const Key32& node, const std::string& relay);

// Dialer side (Link::connect calls it for a relayed address).
asio::awaitable<std::shared_ptr<Link>> connect_relayed(const RelayedAddress& via, const Identity& self, LinkOptions opts);

// Relayed-node side, for one RELAY_INCOMING: opens a new link to the relay,
// accepts `token`, and returns the connection (spliced or punched) on which
// the dialer will start the handshake. Throws NetError.
asio::awaitable<asio::ip::tcp::socket> answer_relayed(const std::string& relay, const Key32& relay_id, uint64_t token,
                                                      const Identity& self, LinkOptions opts);

struct RelayLimits {
    int max_nodes = 16;                    // nodes relayed at once (0: this node does not relay)
    int max_links_per_node = 16;           // spliced connections per relayed node
    uint32_t max_bytes_per_s = 16u << 20;  // per relayed node and direction
    std::chrono::seconds idle{1800};       // a splice with no byte either way for this long closes
};

class RelayService {
public:
    RelayService(asio::any_io_executor ex, RelayLimits limits);

    // RELAY_REGISTER on `link`: answers it and keeps the link as the node's.
    void on_register(const std::shared_ptr<Link>& link);
    // RELAY_DIAL / RELAY_ACCEPT on `link`. True when the link's connection now
    // belongs to a splice: its reader must stop reading and leave it alone.
    asio::awaitable<bool> on_dial(std::shared_ptr<Link> link, RelayDial dial);
    asio::awaitable<bool> on_accept(std::shared_ptr<Link> link, RelayAccept accept);
    // A link ended: a node whose kept link it was is relayed no more.
    void on_closed(const Link* link);

    // For NODE_INFO: the relayed identities (32 bytes each) and open slots.
    std::vector<uint8_t> relayed_ids() const;
    uint16_t free_slots() const;
    const RelayLimits& limits() const { return limits_; }

    struct NodeUse {
        int links = 0;          // spliced connections open now
        uint64_t bytes = 0;     // forwarded so far, both ways
        uint64_t refused = 0;   // dials refused at the link cap
    };
    std::map<Key32, NodeUse> usage() const;

private:
    struct Relayed;
    struct Pending;
    struct Bucket;
    asio::awaitable<void> splice(asio::ip::tcp::socket a, asio::ip::tcp::socket b, std::shared_ptr<Relayed> node);
    asio::awaitable<void> pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to, std::shared_ptr<Relayed> node,
                               std::shared_ptr<Bucket> bucket);

    asio::any_io_executor ex_;
    RelayLimits limits_;
    std::map<Key32, std::shared_ptr<Relayed>> nodes_;
    std::map<uint64_t, std::shared_ptr<Pending>> pending_;
};

}  // namespace llmn::net
