#include "client/route_planner.h"

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cctype>
#include <cstdio>
#include <limits>

#include "net/identity.h"

namespace llmn::client {
namespace {

constexpr int kAttempts = 16;  // fresh draws before an open-swarm plan gives up
constexpr double kLivedUpTo = 2.0;  // a measured figure within this factor of the node's claim confirms it
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string lower(std::string s) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

// An address split into its parts: "ID@host:port" -> relay id, "host:port" of the relay.
struct AddressParts {
    std::string relayed_id;  // lower-case ID before '@' ("" : not relayed)
    std::string host_port;   // what is dialed (the relay's for a relayed node)
    std::string host;        // without port and brackets
};

AddressParts split(const std::string& address) {
    AddressParts p;
    const auto at = address.rfind('@');
    p.host_port = at == std::string::npos ? address : address.substr(at + 1);
    if (at != std::string::npos) p.relayed_id = lower(address.substr(0, at));
    const std::string& hp = p.host_port;
    if (!hp.empty() && hp.front() == '[') {
        const auto close = hp.find(']');
        p.host = hp.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else if (std::count(hp.begin(), hp.end(), ':') == 1) {
        p.host = hp.substr(0, hp.find(':'));
    } else {
        p.host = hp;  // no port, or a bare IPv6 address
    }
    p.host = lower(p.host);
    return p;
}

// The network rule's key ("" : exempt) and the private subnet that only a preference looks at.
struct NetClass {
    std::string network;
    std::string lan;
};

std::string prefix_v6(const std::array<unsigned char, 16>& b, int groups, int bits) {
    std::string s;
    char buf[8];
    for (int g = 0; g < groups; ++g) {
        std::snprintf(buf, sizeof buf, "%02x%02x:", b[2 * g], b[2 * g + 1]);
        s += buf;
    }
    return s + ":/" + std::to_string(bits);
}

NetClass classify(const std::string& host) {
    if (host.empty() || host == "localhost") return {};
    asio::error_code ec;
    asio::ip::address a = asio::ip::make_address(host, ec);
    if (ec) return {"host " + host, ""};  // a name: its own network (nothing is resolved here)
    if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    if (a.is_unspecified() || a.is_loopback()) return {};
    char buf[32];
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        const bool lan = b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
                         (b[0] == 100 && (b[1] & 0xc0) == 64);  // RFC 1918, and 100.64/10 (carrier-grade NAT)
        if (b[0] == 169 && b[1] == 254) return {};              // link-local
        std::snprintf(buf, sizeof buf, lan ? "%d.%d.%d.0/24" : "%d.%d.0.0/16", b[0], b[1], b[2]);
        return lan ? NetClass{"", buf} : NetClass{buf, ""};
    }
    const auto b = a.to_v6().to_bytes();
    if (a.to_v6().is_link_local()) return {};               // fe80::/10
    if ((b[0] & 0xfe) == 0xfc) return {"", prefix_v6(b, 4, 64)};  // unique-local fc00::/7
    return {prefix_v6(b, 3, 48), ""};
}

// What the rules know of one candidate.
struct HopTraits {
    std::string network;            // network_of ("" : exempt)
    std::string lan;                // private /24 or unique-local /64 ("" : none)
    std::vector<std::string> keys;  // identities: "id:<hex>", "addr:<address>"
    std::string via;                // "addr:<relay address>" of a node behind a relay ("" : none)
};

HopTraits describe(const Candidate& c) {
    const AddressParts p = split(c.address);
    const NetClass n = classify(p.host);
    HopTraits t{n.network, n.lan, {"addr:" + c.address}};
    if (!p.relayed_id.empty()) {
        t.keys.push_back("id:" + p.relayed_id);
        t.via = "addr:" + p.host_port;  // its relay, as a hop of its own, would see the same traffic
    }
    if (c.identity != net::Key32{}) {
        const std::string id = "id:" + net::to_hex(c.identity.data(), c.identity.size());
        if (std::find(t.keys.begin(), t.keys.end(), id) == t.keys.end()) t.keys.push_back(id);
    }
    return t;
}

// Whether two hops may not share one circuit.
bool clash(const HopTraits& a, const HopTraits& b, bool network_rule) {
    if (network_rule && !a.network.empty() && a.network == b.network) return true;
    auto has = [](const HopTraits& t, const std::string& k) { return std::find(t.keys.begin(), t.keys.end(), k) != t.keys.end(); };
    for (const auto& k : a.keys)
        if (has(b, k)) return true;
    // A relay and a node it relays are not two hops of one circuit; two nodes behind one relay may be.
    return (!a.via.empty() && has(b, a.via)) || (!b.via.empty() && has(a, b.via));
}

// The slower middle value (0 for none).
double upper_median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

// Per candidate: seconds per layer and round trip the plan counts on.
struct Estimate {
    std::vector<double> seconds_per_layer, rtt;
};

Estimate estimate(const std::vector<Candidate>& cands, const std::vector<bool>& off, const PlannerConfig& cfg) {
    std::vector<double> claims, rtts;
    double best_measured = kInf;
    for (size_t i = 0; i < cands.size(); ++i) {
        const Candidate& c = cands[i];
        if (off[i]) continue;
        if (c.rtt_seconds > 0) rtts.push_back(c.rtt_seconds);
        if (c.relay_only()) continue;
        if (c.seconds_per_layer > 0) claims.push_back(c.seconds_per_layer);
        // Only a node that lived up to its own claim sets the bar: one caught
        // lying (measured far slower) must not drag every honest claim down to it.
        const double m = c.measured_seconds_per_layer;
        if (m > 0 && (c.seconds_per_layer <= 0 || m <= kLivedUpTo * c.seconds_per_layer)) best_measured = std::min(best_measured, m);
    }
    // A claim never counts as faster than the median claim, nor than what was
    // really seen from the fastest node measured.
    const double floor = cfg.trusted ? 0.0 : std::max(upper_median(claims), best_measured == kInf ? 0.0 : best_measured);
    const double unknown_rtt = rtts.empty() ? cfg.default_rtt_seconds : upper_median(rtts);
    Estimate e;
    for (const Candidate& c : cands) {
        const double claim = c.seconds_per_layer > 0 ? c.seconds_per_layer : cfg.default_seconds_per_layer;
        e.seconds_per_layer.push_back(c.measured_seconds_per_layer > 0 ? c.measured_seconds_per_layer : std::max(claim, floor));
        e.rtt.push_back(c.rtt_seconds > 0 ? c.rtt_seconds : unknown_rtt);
    }
    return e;
}

// Shortest path over layer boundaries first_layer..n_layer: a candidate is an
// edge from any boundary l in [start, end) to end, costing its time for layers
// [l, end) scaled by its factor. Candidate indices in layer order, or empty.
std::vector<int> shortest(const std::vector<Candidate>& cands, int n_layer, const std::vector<bool>& off, const Estimate& est,
                          const std::vector<double>& factor, const PlannerConfig& cfg) {
    std::vector<double> best(n_layer + 1, kInf);
    std::vector<int> via(n_layer + 1, -1), from(n_layer + 1, -1);
    best[cfg.first_layer] = 0;
    for (int l = cfg.first_layer; l < n_layer; ++l) {
        if (best[l] == kInf) continue;
        for (size_t c = 0; c < cands.size(); ++c) {
            const Candidate& k = cands[c];
            if (off[c] || k.span_start > l || k.span_end <= l || k.span_end > n_layer) continue;
            const double cost = best[l] + factor[c] * (est.seconds_per_layer[c] * (k.span_end - l) + est.rtt[c]) +
                                (k.free_sessions <= 0 ? cfg.busy_penalty_seconds : 0.0);
            if (cost < best[k.span_end]) {
                best[k.span_end] = cost;
                via[k.span_end] = int(c);
                from[k.span_end] = l;
            }
        }
    }
    if (best[n_layer] == kInf) return {};
    std::vector<int> route;
    for (int l = n_layer; l > cfg.first_layer; l = from[l]) route.insert(route.begin(), via[l]);
    return route;
}

double unit(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }  // [0, 1), the same on every platform

// Everything one plan works on.
struct Planning {
    const std::vector<Candidate>& cands;
    const PlannerConfig& cfg;
    std::vector<HopTraits> traits;
    std::vector<bool> off;  // banned
    Estimate est;
    bool open;  // !cfg.trusted: randomness, claims floored, the network rule
    std::mt19937_64& rng;

    int pick(const std::vector<int>& v) { return open ? v[rng() % v.size()] : v.front(); }
    // Those whose private subnet no hop uses yet, when there are any (open swarm only).
    std::vector<int> prefer(const std::vector<int>& v, const std::set<std::string>& lans) const {
        if (!open) return v;
        std::vector<int> apart;
        for (int i : v)
            if (traits[i].lan.empty() || !lans.count(traits[i].lan)) apart.push_back(i);
        return apart.empty() ? v : apart;
    }

    // Spans that keep the rules: the cheapest route under `factor`; while two
    // of its hops clash, one of them is left out (the other one if nothing
    // covers the layers without it) and the route planned again.
    std::vector<int> spans(int n_layer, const std::vector<double>& factor) {
        std::vector<bool> skip = off;
        for (;;) {
            const std::vector<int> route = shortest(cands, n_layer, skip, est, factor, cfg);
            if (route.empty()) return {};
            int keep = -1, drop = -1;
            for (size_t i = 0; i < route.size() && drop < 0; ++i)
                for (size_t j = i + 1; j < route.size() && drop < 0; ++j)
                    if (clash(traits[route[i]], traits[route[j]], open)) keep = route[i], drop = route[j];
            if (drop < 0) return route;
            if (open && (rng() & 1)) std::swap(keep, drop);
            skip[drop] = true;
            if (shortest(cands, n_layer, skip, est, factor, cfg).empty()) skip[drop] = false, skip[keep] = true;
        }
    }

    // Entry and/or exit relays off `route`, clear of it and of each other.
    // Fills `out`, or says why not in `why`.
    bool relays(const std::vector<int>& route, bool want_entry, bool want_exit, CircuitChoice& out, std::string& why) {
        std::vector<int> spare;
        size_t off_route = 0;
        for (size_t c = 0; c < cands.size(); ++c) {
            if (off[c] || std::find(route.begin(), route.end(), int(c)) != route.end()) continue;
            ++off_route;
            bool clear = true;
            for (int s : route) clear = clear && !clash(traits[c], traits[s], open);
            if (clear) spare.push_back(int(c));
        }
        if (!open)  // the operator's own nodes: relay-only ones first, then the nearest
            std::stable_sort(spare.begin(), spare.end(), [&](int a, int b) {
                const bool ra = cands[a].relay_only(), rb = cands[b].relay_only();
                return ra != rb ? ra : est.rtt[a] < est.rtt[b];
            });
        std::set<std::string> lans;
        for (int s : route) lans.insert(traits[s].lan);
        const auto partners = [&](int e) {
            std::vector<int> v;
            for (int x : spare)
                if (!clash(traits[e], traits[x], open)) v.push_back(x);
            return v;
        };
        std::vector<int> first = spare;  // candidates for the first relay chosen
        if (want_entry && want_exit) std::erase_if(first, [&](int e) { return partners(e).empty(); });
        if (first.empty()) {
            const size_t need = size_t(want_entry) + size_t(want_exit);
            why = "an onion circuit needs " + std::to_string(need) + " relay(s) off the route, each under an identity" +
                  (open ? " and in a network (/16, /48)" : "") + " apart from the spans' and each other's; found " +
                  std::to_string(spare.empty() ? 0 : 1) + " among " + std::to_string(off_route) + " node(s) off the route";
            return false;
        }
        const int a = pick(prefer(first, lans));
        if (!want_entry || !want_exit) {
            (want_entry ? out.entry_relay : out.exit_relay) = cands[a].address;
            return true;
        }
        lans.insert(traits[a].lan);
        out.entry_relay = cands[a].address;
        out.exit_relay = cands[pick(prefer(partners(a), lans))].address;
        return true;
    }
};

}  // namespace

std::string network_of(const std::string& address) { return classify(split(address).host).network; }

std::optional<CircuitChoice> plan_circuit(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned,
                                          const PlannerConfig& cfg, bool entry_relay, bool exit_relay, std::mt19937_64& rng,
                                          std::string* why) {
    const auto fail = [&](std::string reason) -> std::optional<CircuitChoice> {
        if (why) *why = std::move(reason);
        return std::nullopt;
    };
    const std::string layers = std::to_string(cfg.first_layer) + ":" + std::to_string(n_layer);
    if (cfg.first_layer < 0 || cfg.first_layer >= n_layer) return fail("no layers to route: " + layers);
    Planning p{candidates, cfg, {}, {}, {}, !cfg.trusted, rng};
    size_t usable = 0;
    for (const Candidate& c : candidates) {
        p.traits.push_back(describe(c));
        p.off.push_back(banned.count(c.address) > 0);
        usable += !p.off.back();
    }
    p.est = estimate(candidates, p.off, cfg);
    std::vector<double> factor(candidates.size(), 1.0);
    if (shortest(candidates, n_layer, p.off, p.est, factor, cfg).empty())
        return fail("no route covers layers " + layers + " with the " + std::to_string(usable) + " usable node(s)");
    std::string reason;
    for (int attempt = 0; attempt < (p.open ? kAttempts : 1); ++attempt) {
        if (p.open && cfg.slack > 1)
            for (double& f : factor) f = 1 + (cfg.slack - 1) * unit(rng);
        const std::vector<int> route = p.spans(n_layer, factor);
        if (route.empty()) {
            reason = "every route covering layers " + layers + " puts two hops under one identity" +
                     (p.open ? " or in one network (/16, /48)" : "");
            continue;
        }
        CircuitChoice out;
        for (int i : route) out.spans.push_back(candidates[i].address);
        if ((!entry_relay && !exit_relay) || p.relays(route, entry_relay, exit_relay, out, reason)) return out;
    }
    return fail(reason);
}

std::vector<std::string> plan_route(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned,
                                    const PlannerConfig& cfg) {
    PlannerConfig trusted = cfg;
    trusted.trusted = true;
    std::mt19937_64 unused;  // a trusted plan draws nothing
    const auto c = plan_circuit(candidates, n_layer, banned, trusted, false, false, unused);
    return c ? c->spans : std::vector<std::string>{};
}

}  // namespace llmn::client
