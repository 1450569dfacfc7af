// PROBE_REQUEST: a node looks at other nodes for a client, so that a client
// building an onion circuit learns spans, identities and onion keys without
// contacting a span node itself (THREAT_MODEL.md, "Discovery without probing
// span nodes"). The answers carry each node's signed NODE_INFO: this node can
// leave nodes out, but cannot change what they said.
#include <sstream>

#include "net/probe.h"
#include "node/node_impl.h"

namespace llmn::node {
namespace {

constexpr size_t kMaxProbeAddresses = 64;
constexpr int kMaxProbeRequests = 4;  // running at once in this node
constexpr auto kProbeTimeout = std::chrono::milliseconds(3000);

}  // namespace

void Node::Impl::on_probe_request(const std::shared_ptr<net::Link>& link, const net::ProbeRequest& req) {
    if (probe_requests >= kMaxProbeRequests) return send_error(link, req.request_id, net::Errc::overloaded, "busy probing; retry later");
    if (!dial_policy.take(link->peer_address().substr(0, link->peer_address().rfind(':')), Clock::now()))
        return send_error(link, req.request_id, net::Errc::overloaded, "too many requests from this peer");
    const std::string asker_ip = link->peer_address().substr(0, link->peer_address().rfind(':'));
    std::vector<std::string> addresses;
    std::stringstream in(req.addresses);
    for (std::string a; std::getline(in, a, ',') && addresses.size() < kMaxProbeAddresses;)
        if (dial_policy.refusal(a, asker_ip).empty()) addresses.push_back(a);  // others get no answer (the asker sees "no answer")
    ++probe_requests;
    struct Round {
        std::shared_ptr<net::Link> asker;
        uint64_t rid = 0;
        size_t left = 0;
    };
    auto round = std::make_shared<Round>(Round{link, req.request_id, addresses.size()});
    auto finish_one = [this, round] {
        if (--round->left > 0) return;
        --probe_requests;
        send(round->asker, net::ProbeAnswer{round->rid, "", {}, 0, {}});
    };
    if (addresses.empty()) {
        round->left = 1;
        return finish_one();
    }
    for (const std::string& addr : addresses) {
        asio::co_spawn(io, [this, addr, round]() -> awaitable<void> {
            const auto t0 = Clock::now();
            net::LinkOptions opts = link_opts;
            opts.handshake_timeout = kProbeTimeout;
            opts.punch_window = std::chrono::milliseconds(0);
            auto peer = co_await net::Link::connect(addr, identity, opts);
            net::Message m = co_await peer->read(kProbeTimeout);
            peer->close(net::Errc::closed);
            if (const auto* ni = std::get_if<net::NodeInfo>(&m)) {
                const auto rtt_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() / 3;
                send(round->asker, net::ProbeAnswer{round->rid, addr, peer->peer_identity(), uint32_t(rtt_us), net::encode(*ni)});
            }
        }, [finish_one](std::exception_ptr) mutable { finish_one(); });
    }
}

}  // namespace llmn::node
