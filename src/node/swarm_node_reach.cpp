// SwarmNode's reachability: the address it advertises, the dial-back check,
// and serving through a relay when no peer can reach it (swarm_node.h).
#include <algorithm>
#include <cstdio>

#include "net/probe.h"
#include "net/reach.h"
#include "net/relay.h"
#include "node/swarm_node.h"

namespace llmn::node {
namespace {

void log_line(const std::string& s) { std::fprintf(stderr, "[swarm] %s\n", s.c_str()); }

constexpr auto kMappingWait = std::chrono::seconds(4);   // UPnP / NAT-PMP answer, external IP
constexpr auto kDialBackWait = std::chrono::seconds(5);  // one peer's dial-back answer
constexpr auto kRelayWait = std::chrono::seconds(6);     // registration at a relay
constexpr auto kReachRetry = std::chrono::seconds(60);   // unchecked or relay-less: look again
constexpr int kDialBackHelpers = 3;

std::string host_of(const std::string& hp) { return hp.substr(0, hp.rfind(':')); }
uint16_t port_of(const std::string& hp) { return uint16_t(std::stoi(hp.substr(hp.rfind(':') + 1))); }

// What kind of address a host is, from asio's parser ("[v6]" brackets allowed).
enum class HostKind { unspecified, loopback, lan, other };
HostKind host_kind(std::string host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return HostKind::unspecified;
    if (host == "localhost") return HostKind::loopback;
    asio::error_code ec;
    const asio::ip::address a = asio::ip::make_address(host, ec);
    if (ec) return HostKind::other;
    if (a.is_unspecified()) return HostKind::unspecified;
    if (a.is_loopback()) return HostKind::loopback;
    if (a.is_v6()) {
        const auto b = a.to_v6().to_bytes();
        return a.to_v6().is_link_local() || (b[0] & 0xfe) == 0xfc ? HostKind::lan : HostKind::other;  // fe80::/10, fc00::/7
    }
    const auto b = a.to_v4().to_bytes();  // RFC 1918 and link-local
    const bool lan = b[0] == 10 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254);
    return lan ? HostKind::lan : HostKind::other;
}

}  // namespace

bool SwarmNode::may_publish() const {
    // Never 0.0.0.0, nor a LAN address that no peer has reached us at (LAN nodes
    // whose peers dialed back keep theirs; LSD finds them anyway).
    const HostKind kind = host_kind(host_of(advertised_));
    return kind != HostKind::unspecified && !(kind == HostKind::lan && reach_ != uint8_t(net::Reach::direct));
}

std::vector<std::string> SwarmNode::other_peers() {
    std::vector<std::string> out;
    for (const auto& p : dht_->peers(model_id_, cfg_.lookup_timeout))
        if (p != bound_ && p != advertised_) out.push_back(p);
    return out;
}

void SwarmNode::settle_reachability() {
    const std::string host = host_of(bound_);
    uint16_t port = port_of(bound_);
    bool mapped = false;
    std::string ip;
    if (!cfg_.advertise.empty()) {
        ip = host_of(cfg_.advertise);
        port = port_of(cfg_.advertise);
    } else if (host_kind(host) == HostKind::loopback) {
        advertised_ = bound_;  // one machine (tests, demos): nothing to map or check
        reach_ = uint8_t(net::Reach::direct);
        return;
    } else {
        if (cfg_.dht.port_mapping) dht_->map_port(port);
        const auto r = dht_->wait_reach(kMappingWait, cfg_.dht.port_mapping);
        if (r.mapped_port) {
            log_line("the home router (" + r.mapped_by + ") forwards TCP " + std::to_string(r.mapped_port) + " to this node's " +
                     std::to_string(port));
            port = r.mapped_port;
            mapped = true;
        } else if (cfg_.dht.port_mapping && !r.mapping_error.empty()) {
            log_line("port mapping failed: " + r.mapping_error);
        }
        ip = !r.external_ip.empty() ? r.external_ip : host_kind(host) == HostKind::unspecified ? "" : host;
    }
    advertised_ = (ip.empty() ? "0.0.0.0" : ip) + ":" + std::to_string(port);

    // Dial-back: a few peers of the swarm try to reach us where we say we are.
    std::vector<std::string> helpers;
    for (const auto& p : other_peers())
        if (!net::parse_relayed(p)) helpers.push_back(p);
    std::shuffle(helpers.begin(), helpers.end(), rng_);
    if (std::getenv("LLM_NODE_SWARM_DEBUG")) log_line("dial-back: " + std::to_string(helpers.size()) + " helpers");
    net::LinkOptions opts;
    opts.swarm_key = cfg_.node.swarm_key;
    int said_no = 0, asked = 0;
    std::string why;
    for (const auto& h : helpers) {
        if (asked >= kDialBackHelpers || stopping_) break;
        net::DialBackResult r;
        try {
            r = net::ask_dial_back(h, port, identity_->public_key(), opts, kDialBackWait);
        } catch (const std::exception& e) {
            if (std::getenv("LLM_NODE_SWARM_DEBUG")) log_line("dial-back: cannot ask " + h + ": " + e.what());
            continue;  // a peer we cannot ask says nothing about us
        }
        ++asked;
        // The peer dialed the IP it saw us come from: that is our address as the swarm sees it.
        if (!r.observed.empty() && (cfg_.advertise.empty() || ip.empty())) {
            ip = host_of(r.observed);
            advertised_ = ip + ":" + std::to_string(port);
        }
        if (r.reachable) {
            reach_ = uint8_t(mapped ? net::Reach::mapped : net::Reach::direct);
            log_line("reachable at " + advertised_ + (mapped ? " through the router's port mapping" : "") + " (a peer dialed back)");
            return;
        }
        ++said_no;
        why = r.text;
    }
    if (said_no == 0) {
        reach_ = uint8_t(net::Reach::unknown);
        next_reach_check_ = std::chrono::steady_clock::now() + kReachRetry;
        log_line("announcing " + advertised_ + " unchecked: no peer of the swarm could dial back yet");
        return;
    }
    const std::string fix = "forward TCP " + std::to_string(port_of(bound_)) + " to this machine or enable UPnP on the router";
    const std::string tried = advertised_;
    if (serve_through_relay(helpers)) {
        log_line("not reachable at " + tried + ": " + fix + "; serving through relay " + relay_ + " instead");
        return;
    }
    reach_ = uint8_t(net::Reach::relayed);  // announce nothing that no one can reach
    advertised_ = "0.0.0.0:" + std::to_string(port);
    next_reach_check_ = std::chrono::steady_clock::now() + kReachRetry;
    log_line("not reachable (" + why + "): " + fix + "; no relay in the swarm accepts this node yet, retrying every minute");
}

bool SwarmNode::serve_through_relay(const std::vector<std::string>& peers) {
    std::vector<std::string> relays;
    if (!cfg_.relay.empty()) {
        relays.push_back(cfg_.relay);
    } else {
        // Any reachable node with a free relay slot, in random order: no node
        // chosen by everyone, and none that is relayed itself.
        for (const auto& p : net::probe_nodes(peers, std::chrono::milliseconds(2000), cfg_.node.swarm_key))
            if (p.identity != identity_->public_key() && p.info.relay_free > 0 && p.info.reach != uint8_t(net::Reach::relayed) &&
                !net::parse_relayed(p.address))
                relays.push_back(p.address);
        std::shuffle(relays.begin(), relays.end(), rng_);
    }
    for (const auto& r : relays) {
        if (stopping_) return false;
        node_->use_relay(r);
        Node::RelayState st;
        for (auto until = std::chrono::steady_clock::now() + kRelayWait; std::chrono::steady_clock::now() < until && !stopping_;) {
            st = node_->relay_state();
            if (st.registered || !st.error.empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (!st.registered) {
            log_line("relay " + r + " did not take this node: " + (st.error.empty() ? "no answer" : st.error));
            continue;
        }
        relay_ = r;
        reach_ = uint8_t(net::Reach::relayed);
        advertised_ = net::relayed_address(identity_->public_key(), r);
        log_line("relay " + r + " gives this node " + std::to_string(st.max_links) + " links and " +
                 std::to_string(st.max_bytes_per_s >> 20) + " MiB/s each way; it sees this node at " + st.observed);
        return true;
    }
    return false;
}

// At each re-check: a lost relay is replaced, and an unchecked or relay-less
// node looks again once a minute. True when the advertised address changed.
bool SwarmNode::keep_reachable() {
    const bool relayed = reach_ == uint8_t(net::Reach::relayed);
    if (relayed && !relay_.empty()) {
        if (node_->relay_state().registered) return false;
        log_line("lost relay " + relay_ + ": looking for another");
    } else if (reach_ == uint8_t(net::Reach::unknown) || relayed) {
        if (std::chrono::steady_clock::now() < next_reach_check_) return false;
    } else {
        return false;  // direct or mapped
    }
    const std::string before = advertised_;
    relay_.clear();
    settle_reachability();
    node_->set_reach(reach_);
    if (advertised_ == before) return false;
    log_line("now reached at " + advertised_ + " (" + net::reach_name(reach_) + ")");
    return true;
}

}  // namespace llmn::node
