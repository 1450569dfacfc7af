// A node's reachability parts (internal to node/): it relays nodes behind NAT
// (net::RelayService), answers dial-back checks (net::DialBackService) and,
// when it cannot be reached itself, serves through a relay (net::RelayClient).
// Everything here runs on the node's io thread.
#pragma once
#include <functional>
#include <optional>

#include "net/reach.h"
#include "net/relay.h"
#include "node/node.h"

namespace llmn::node {

struct NodeReach {
    NodeReach(asio::io_context& io, const net::Identity& self, const net::LinkOptions& opts, const NodeConfig& cfg,
              std::function<void(asio::ip::tcp::socket)> serve);

    asio::io_context& io;
    net::RelayService relay;
    net::DialBackService dial_back;
    net::RelayClient relay_client;
    uint8_t reach = uint8_t(net::Reach::unknown);

    // Handles DIAL_BACK and the RELAY_* messages: nullopt when `m` is none of
    // them; true when the link's connection now belongs to a splice.
    asio::awaitable<std::optional<bool>> dispatch(const std::shared_ptr<net::Link>& link, net::Message& m);
    // The NODE_INFO fields about reachability and relaying.
    void fill(net::NodeInfo& info) const;
};

}  // namespace llmn::node
