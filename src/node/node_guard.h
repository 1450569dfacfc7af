// What a node lets strangers make it do, kept small and bounded (THREAT_MODEL.md,
// "Denial of service"): where it will dial a next hop, how many handshakes one
// IP may start, and which onion slots it has already opened. Io thread only.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>

#include "net/message_types.h"

namespace llmn::node {

using GuardClock = std::chrono::steady_clock;

// Where a next hop may be dialed. On the public internet a node dials only
// public IP literals: never a name (a lookup the peer chooses), loopback,
// link-local, multicast or unspecified, nor (without allow_private) RFC 1918
// or unique-local addresses on its own network. A node that listens on
// loopback (one machine: tests, demos) may dial loopback; one on a private
// address, or in a private swarm, may dial private ones, and so may any node
// for a peer that itself comes from a private address (a LAN peer reaches the
// LAN anyway: zero-config LAN swarms on 0.0.0.0 keep working).
struct DialPolicy {
    bool allow_loopback = false;
    bool allow_private = false;
    int dials_per_minute_per_peer = 30;  // new outbound connections one peer may cause

    // "" when `address` ("ip:port", "[v6]:port" or "ID@ip:port") may be dialed for
    // a peer at `asker_ip` (empty: unknown), else why not.
    std::string refusal(const std::string& address, const std::string& asker_ip = "") const;
    // Counts a dial caused by `peer_ip`; false when that peer is over its rate.
    bool take(const std::string& peer_ip, GuardClock::time_point now);

private:
    std::unordered_map<std::string, std::deque<GuardClock::time_point>> recent_;
};

// The policy that fits a node listening on `listen_host` (private swarm: any LAN).
DialPolicy dial_policy_for(const std::string& listen_host, bool private_swarm, bool allow_private_hops);

// Inbound connections per source IP: at most `max_pending` handshakes at once
// and `per_10s` started in any 10 s, so one address cannot make the node run
// X25519 and Ed25519 for free as fast as it can connect.
class HandshakeLimiter {
public:
    HandshakeLimiter(int max_pending, int per_10s) : max_pending_(max_pending), per_10s_(per_10s) {}
    bool admit(const std::string& ip, GuardClock::time_point now);  // true: go ahead (call done() after)
    void done(const std::string& ip);

private:
    struct PerIp {
        int pending = 0;
        std::deque<GuardClock::time_point> started;
    };
    int max_pending_, per_10s_;
    std::unordered_map<std::string, PerIp> ips_;
};

// Onion slots already opened, until their layer's expiry: a replayed EXTEND
// (same sealed slot) is refused. Bounded: when full, new circuits are refused.
class ReplayCache {
public:
    explicit ReplayCache(size_t max_entries = 1u << 16) : max_(max_entries) {}
    enum class Verdict { fresh, replayed, full };
    Verdict check_and_insert(const net::Key32& tag, uint64_t expires_unix, uint64_t now_unix);
    size_t size() const { return by_tag_.size(); }

private:
    size_t max_;
    std::map<net::Key32, uint64_t> by_tag_;
    std::multimap<uint64_t, net::Key32> by_expiry_;
};

uint64_t unix_now();

}  // namespace llmn::node
