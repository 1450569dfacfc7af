// TCP connections for relaying and hole punching (internal to net/).
//
// Punching works through NATs that keep a connection's source port (Linux
// MASQUERADE does when it can): each end connects to the relay from port P,
// the relay tells each the other's observed address, and each connects from
// the same P to the other at once. Each outgoing SYN opens the sender's NAT
// for the other's, and the two SYNs cross into one connection (TCP
// simultaneous open). NATs that pick a new port per destination defeat it.
#pragma once
#include <asio.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace llmn::net::detail {

// "ip:port" or "[v6]:port" as an endpoint; nullopt when not numeric.
std::optional<asio::ip::tcp::endpoint> parse_endpoint(const std::string& host_port);

// A socket bound with SO_REUSEADDR and SO_REUSEPORT (so that a second socket
// may bind the same local port) to `local` (port 0: any), connected to
// `host_port` within `timeout`. Throws NetError naming the address.
asio::awaitable<asio::ip::tcp::socket> connect_reusable(const std::string& host_port, std::optional<asio::ip::tcp::endpoint> local,
                                                        std::chrono::milliseconds timeout);

// Connects from `local` to `peer` until an attempt succeeds or `window` passes.
asio::awaitable<std::optional<asio::ip::tcp::socket>> punch(asio::ip::tcp::endpoint local, asio::ip::tcp::endpoint peer,
                                                            std::chrono::milliseconds window);

}  // namespace llmn::net::detail
