#include "node/node_guard.h"

#include <asio/ip/address.hpp>

#include "net/relay.h"

namespace llmn::node {
namespace {

enum class Kind { name, unusable, loopback, private_net, public_net };

Kind kind_of(std::string host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    asio::error_code ec;
    const asio::ip::address a = asio::ip::make_address(host, ec);
    if (ec) return Kind::name;
    if (a.is_unspecified() || a.is_multicast()) return Kind::unusable;
    if (a.is_loopback()) return Kind::loopback;
    if (a.is_v6()) {
        const asio::ip::address_v6 v6 = a.to_v6();
        if (v6.is_v4_mapped()) return kind_of(asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string());
        if (v6.is_link_local()) return Kind::unusable;
        return (v6.to_bytes()[0] & 0xfe) == 0xfc ? Kind::private_net : Kind::public_net;  // fc00::/7
    }
    const auto b = a.to_v4().to_bytes();
    if (b[0] == 169 && b[1] == 254) return Kind::unusable;  // link-local
    if (b[0] == 0 || b[0] >= 240) return Kind::unusable;
    // RFC 1918. Not CGNAT (100.64/10): that is the ISP's network, not the node's own.
    const bool priv = b[0] == 10 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168);
    return priv ? Kind::private_net : Kind::public_net;
}

std::string host_part(const std::string& hp) {
    const auto colon = hp.rfind(':');
    return colon == std::string::npos ? hp : hp.substr(0, colon);
}

}  // namespace

uint64_t unix_now() {
    return uint64_t(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string DialPolicy::refusal(const std::string& address, const std::string& asker_ip) const {
    std::string target = address;
    if (const auto via = net::parse_relayed(address)) target = via->relay;
    const std::string host = host_part(target);
    if (host.empty() || host.size() == target.size()) return "not host:port";
    switch (kind_of(host)) {
        case Kind::name: return "not an IP address";
        case Kind::unusable: return "not a dialable address";
        case Kind::loopback: return allow_loopback ? "" : "a loopback address";
        case Kind::private_net: {
            const Kind asker = asker_ip.empty() ? Kind::name : kind_of(asker_ip);
            return allow_private || asker == Kind::private_net || asker == Kind::loopback ? "" : "a private address";
        }
        case Kind::public_net: return "";
    }
    return "unknown address kind";
}

bool DialPolicy::take(const std::string& peer_ip, GuardClock::time_point now) {
    auto& q = recent_[peer_ip];
    while (!q.empty() && now - q.front() > std::chrono::minutes(1)) q.pop_front();
    if (int(q.size()) >= dials_per_minute_per_peer) return false;
    q.push_back(now);
    if (recent_.size() > 4096)  // forget peers that dialed nothing for a minute
        for (auto it = recent_.begin(); it != recent_.end();)
            it = it->second.empty() || now - it->second.back() > std::chrono::minutes(1) ? recent_.erase(it) : std::next(it);
    return true;
}

DialPolicy dial_policy_for(const std::string& listen_host, bool private_swarm, bool allow_private_hops) {
    DialPolicy p;
    const Kind k = kind_of(listen_host);
    p.allow_loopback = k == Kind::loopback;
    p.allow_private = private_swarm || allow_private_hops || k == Kind::loopback || k == Kind::private_net;
    return p;
}

bool HandshakeLimiter::admit(const std::string& ip, GuardClock::time_point now) {
    PerIp& p = ips_[ip];
    while (!p.started.empty() && now - p.started.front() > std::chrono::seconds(10)) p.started.pop_front();
    if (p.pending >= max_pending_ || int(p.started.size()) >= per_10s_) {
        if (p.pending == 0 && p.started.empty()) ips_.erase(ip);
        return false;
    }
    ++p.pending;
    p.started.push_back(now);
    return true;
}

void HandshakeLimiter::done(const std::string& ip) {
    auto it = ips_.find(ip);
    if (it == ips_.end()) return;
    --it->second.pending;
    if (ips_.size() > 4096) {  // forget addresses idle for 10 s, so the map stays small
        const auto now = GuardClock::now();
        for (auto i = ips_.begin(); i != ips_.end();)
            i = i->second.pending <= 0 && (i->second.started.empty() || now - i->second.started.back() > std::chrono::seconds(10)) ? ips_.erase(i)
                                                                                                                            : std::next(i);
    }
}

ReplayCache::Verdict ReplayCache::check_and_insert(const net::Key32& tag, uint64_t expires_unix, uint64_t now_unix) {
    while (!by_expiry_.empty() && by_expiry_.begin()->first < now_unix) {
        by_tag_.erase(by_expiry_.begin()->second);
        by_expiry_.erase(by_expiry_.begin());
    }
    if (by_tag_.count(tag)) return Verdict::replayed;
    if (by_tag_.size() >= max_) return Verdict::full;
    by_tag_.emplace(tag, expires_unix);
    by_expiry_.emplace(expires_unix, tag);
    return Verdict::fresh;
}

}  // namespace llmn::node
