// Is this node reachable, and if not, how others still reach it.
//
// Dial-back: a node asks a peer to connect back to the address it advertises
// (DIAL_BACK). The peer dials only the IP the request came from (never a third
// party), checks that the node there proves the asker's identity, and answers
// with what it saw; each peer serves a few requests per IP per minute.
//
// RelayClient: the relayed node's side of net/relay.h: a kept link to the
// relay, RELAY_INCOMING answered with a new connection that the node serves
// like any accepted one. Keep-alive pings hold the NAT's mapping open.
#pragma once
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/link.h"

namespace llmn::net {

// Asker side, blocking: asks the node at `helper` to dial back `port` on the
// IP it sees and to find `identity` there. Throws NetError when the helper
// cannot be asked (unreachable, refused, timeout).
DialBackResult ask_dial_back(const std::string& helper, uint16_t port, const Key32& identity, LinkOptions opts,
                             std::chrono::milliseconds timeout);

// Helper side: answers DIAL_BACK requests on one io thread, rate-limited.
class DialBackService {
public:
    DialBackService(const Identity& self, LinkOptions opts) : self_(self), opts_(std::move(opts)) {}
    void on_request(const std::shared_ptr<Link>& link, const DialBack& req);

private:
    Identity self_;
    LinkOptions opts_;
    std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> recent_;  // by asker IP
    int running_ = 0;
};

class RelayClient {
public:
    enum class State { idle, connecting, registered, failed };
    struct Status {
        State state = State::idle;
        std::string relay;     // "host:port" of the relay
        std::string observed;  // this node's address as the relay sees it
        std::string text;      // why it failed
        uint32_t max_links = 0, max_bytes_per_s = 0;
    };
    // `serve` takes each connection a dialer reaches us on (run the listener's handshake on it).
    RelayClient(asio::any_io_executor ex, const Identity& self, LinkOptions opts, std::function<void(asio::ip::tcp::socket)> serve)
        : ex_(std::move(ex)), self_(self), opts_(std::move(opts)), serve_(std::move(serve)) {}
    // On the io thread: (re)connects to `relay` and registers; replaces any earlier relay.
    void start(const std::string& relay);
    void stop();
    Status status() const { return status_; }

private:
    asio::awaitable<void> run(std::string relay, uint64_t generation);
    asio::any_io_executor ex_;
    Identity self_;
    LinkOptions opts_;
    std::function<void(asio::ip::tcp::socket)> serve_;
    std::shared_ptr<Link> link_;
    uint64_t generation_ = 0;
    Status status_;
};

}  // namespace llmn::net
