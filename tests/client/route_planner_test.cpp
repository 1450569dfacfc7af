// Route and circuit planning: claims buy nothing, plans spread at random over
// good nodes, and the hops of one circuit stay apart (identity, /16, /48).
#include "client/route_planner.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <tuple>

namespace llmn::client {
namespace {

constexpr int kLayers = 8;
constexpr int kPlans = 200;
// What a node claiming u32-max milli-tokens/s over 8 layers gets as seconds per layer.
const double kMaxClaim = 1000.0 / 4294967295.0 / kLayers;
const std::string kHexId = "ab" + std::string(62, '0');  // a 64-hex node id, for "ID@relay" addresses

net::Key32 key(int n) {
    net::Key32 k{};
    k[0] = uint8_t(n);
    k[31] = 1;
    return k;
}

Candidate node(const std::string& address, int start, int end, double claim, double rtt, int id) {
    Candidate c;
    c.address = address;
    c.span_start = start;
    c.span_end = end;
    c.seconds_per_layer = claim;
    c.rtt_seconds = rtt;
    c.identity = key(id);
    return c;
}

// Four honest full-span nodes and four honest relay-only nodes, each in a /16
// of its own with ordinary figures, and the attacker's trio in 66.77/16: two
// relay-only nodes and one full-span node claiming the maximum speed.
std::vector<Candidate> sybil_swarm() {
    std::vector<Candidate> c;
    for (int i = 0; i < 4; ++i) c.push_back(node(std::to_string(11 + i) + ".1.0.1:7000", 0, kLayers, 0.01, 0.020 + 0.001 * i, 1 + i));
    for (int i = 0; i < 4; ++i) c.push_back(node(std::to_string(21 + i) + ".1.0.1:7000", 0, 0, 0, 0.025 + 0.001 * i, 11 + i));
    c.push_back(node("66.77.1.1:7000", 0, kLayers, kMaxClaim, 0.020, 21));
    c.push_back(node("66.77.2.2:7000", 0, 0, 0, 0.019, 22));
    c.push_back(node("66.77.3.3:7000", 0, 0, 0, 0.019, 23));
    return c;
}
bool in_trio(const std::string& a) { return a.rfind("66.77.", 0) == 0; }

struct TrioShares {
    double span = 0, relay = 0;  // the trio's share of span picks and of relay picks
    int worst = 0;               // most trio hops in one circuit
    int failed = 0;
};

TrioShares plan_many(const PlannerConfig& cfg) {
    const auto swarm = sybil_swarm();
    std::mt19937_64 rng(20240611);
    TrioShares s;
    int spans = 0, relays = 0;
    for (int i = 0; i < kPlans; ++i) {
        std::string why;
        const auto c = plan_circuit(swarm, kLayers, {}, cfg, true, true, rng, &why);
        if (!c) {
            ++s.failed;
            continue;
        }
        int trio = 0;
        for (const auto& a : c->spans) {
            ++spans;
            trio += in_trio(a);
            s.span += in_trio(a);
        }
        for (const auto& a : {c->entry_relay, c->exit_relay}) {
            ++relays;
            trio += in_trio(a);
            s.relay += in_trio(a);
        }
        s.worst = std::max(s.worst, trio);
    }
    s.span /= std::max(spans, 1);
    s.relay /= std::max(relays, 1);
    return s;
}

TEST(RoutePlanner, SybilTrioClaimingMaximumSpeedNeverHoldsTwoHopsOfACircuit) {
    const TrioShares s = plan_many(PlannerConfig{});
    // Off the route there are 11 nodes for the two relays, 3 of them the trio's.
    const double span_candidates = 1.0 / 5, relay_candidates = 3.0 / 11;
    std::printf("sybil trio over %d circuits: span share %.3f (of candidates %.3f), relay share %.3f (of candidates %.3f), "
                "most trio hops in one circuit %d\n",
                kPlans, s.span, span_candidates, s.relay, relay_candidates, s.worst);
    RecordProperty("trio_span_share", std::to_string(s.span));
    RecordProperty("trio_relay_share", std::to_string(s.relay));
    EXPECT_EQ(s.failed, 0);
    EXPECT_LE(s.worst, 1);
    EXPECT_LE(s.span, span_candidates + 0.08);
    EXPECT_LE(s.relay, relay_candidates + 0.08);
}

TEST(RoutePlanner, TrustedModeBelievesClaimsSoItIsOnlyForTheOperatorsOwnNodes) {
    // The old policy (claims win, relay-only nodes first, then the nearest):
    // the same trio takes entry, span and exit of every circuit.
    PlannerConfig cfg;
    cfg.trusted = true;
    const TrioShares s = plan_many(cfg);
    std::printf("trusted mode (the old policy): span share %.3f, relay share %.3f, most trio hops %d\n", s.span, s.relay, s.worst);
    EXPECT_EQ(s.worst, 3);
    EXPECT_EQ(s.span, 1.0);
    EXPECT_EQ(s.relay, 1.0);
}

TEST(RoutePlanner, InterchangeableNodesShareThePlansEvenly) {
    std::vector<Candidate> c;
    for (int i = 0; i < 4; ++i) c.push_back(node(std::to_string(31 + i) + ".0.0.1:7000", 0, kLayers, 0.01, 0.02, 1 + i));
    for (int i = 0; i < 4; ++i) c.push_back(node(std::to_string(41 + i) + ".0.0.1:7000", 0, 0, 0, 0.02, 11 + i));
    std::mt19937_64 rng(7);
    std::map<std::string, int> span_picks, entry_picks;
    const int plans = 800;
    for (int i = 0; i < plans; ++i) {
        const auto plan = plan_circuit(c, kLayers, {}, PlannerConfig{}, true, false, rng);
        ASSERT_TRUE(plan);
        ASSERT_EQ(plan->spans.size(), 1u);
        EXPECT_TRUE(plan->exit_relay.empty());
        ++span_picks[plan->spans[0]];
        ++entry_picks[plan->entry_relay];
    }
    ASSERT_EQ(span_picks.size(), 4u);
    for (const auto& [a, n] : span_picks) EXPECT_NEAR(double(n) / plans, 0.25, 0.06) << a;
    // Each plan draws among 7 nodes off its route: the 4 relay-only ones and 3 full-span ones.
    ASSERT_EQ(entry_picks.size(), 8u);
    for (const auto& [a, n] : entry_picks) EXPECT_NEAR(double(n) / plans, a.rfind("4", 0) == 0 ? 1.0 / 7 : 3.0 / 28, 0.05) << a;
}

TEST(RoutePlanner, MeasuredSpeedOutweighsClaims) {
    std::vector<Candidate> c;
    for (int i = 0; i < 3; ++i) c.push_back(node(std::to_string(51 + i) + ".0.0.1:7000", 0, kLayers, 0.01, 0.02, 1 + i));
    c.push_back(node("61.0.0.1:7000", 0, kLayers, kMaxClaim, 0.02, 9));
    c.back().measured_seconds_per_layer = 0.05;  // claims the maximum, was seen to be slow
    std::mt19937_64 rng(11);
    for (int i = 0; i < kPlans; ++i) EXPECT_NE(plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng)->spans[0], "61.0.0.1:7000");
    c.back().measured_seconds_per_layer = 0.004;  // seen to be fast: it wins every plan
    for (int i = 0; i < kPlans; ++i) EXPECT_EQ(plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng)->spans[0], "61.0.0.1:7000");
}

TEST(RoutePlanner, ClaimsCountNoFasterThanTheFastestNodeSeen) {
    // Liars are the majority, so the median claim is theirs; the one node
    // this client measured (and that lived up to its claim) sets the bar.
    std::vector<Candidate> c;
    for (int i = 0; i < 3; ++i) c.push_back(node("66." + std::to_string(70 + i) + ".0.1:7000", 0, kLayers, kMaxClaim, 0.02, 1 + i));
    for (int i = 0; i < 2; ++i) c.push_back(node(std::to_string(91 + i) + ".0.0.1:7000", 0, kLayers, 0.01, 0.02, 11 + i));
    c.back().measured_seconds_per_layer = 0.01;
    std::mt19937_64 rng(13);
    int liars = 0;
    for (int i = 0; i < kPlans; ++i) liars += plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng)->spans[0].rfind("66.", 0) == 0;
    std::printf("liars claiming the maximum, 3 of 5 span nodes: %.3f of plans\n", double(liars) / kPlans);
    EXPECT_LE(double(liars) / kPlans, 3.0 / 5 + 0.08);
}

TEST(RoutePlanner, DeterministicModesReturnTheFastestRoute) {
    std::vector<Candidate> c = {node("71.0.0.1:1", 0, 4, 0.01, 0.001, 1), node("72.0.0.1:1", 4, 8, 0.01, 0.001, 2),
                                node("73.0.0.1:1", 0, 8, 0.05, 0.001, 3), node("74.0.0.1:1", 2, 8, 0.001, 0.001, 4)};
    const std::vector<std::string> fastest = {"71.0.0.1:1", "74.0.0.1:1"};  // 74 runs only 4:8, by its claim cheaply
    EXPECT_EQ(plan_route(c, kLayers), fastest);
    PlannerConfig trusted;
    trusted.trusted = true;
    std::mt19937_64 rng(3);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(plan_circuit(c, kLayers, {}, trusted, false, false, rng)->spans, fastest);
    // Open swarm, slack 1: the fastest by measured figures, claims floored at the median.
    c[1].measured_seconds_per_layer = 0.002;
    PlannerConfig open;
    open.slack = 1;
    const std::vector<std::string> measured = {"71.0.0.1:1", "72.0.0.1:1"};
    for (int i = 0; i < 20; ++i) EXPECT_EQ(plan_circuit(c, kLayers, {}, open, false, false, rng)->spans, measured);
}

TEST(RoutePlanner, NoTwoHopsOfACircuitShareAnIdentity) {
    // Two cheap halves under one key, two dearer halves under two keys.
    std::vector<Candidate> c = {node("81.0.0.1:1", 0, 4, 0.001, 0.001, 1), node("82.0.0.1:1", 4, 8, 0.001, 0.001, 1),
                                node("83.0.0.1:1", 0, 4, 0.01, 0.001, 2), node("84.0.0.1:1", 4, 8, 0.01, 0.001, 3),
                                node("85.0.0.1:1", 0, 0, 0, 0.001, 2)};  // a relay under the key of 83
    EXPECT_EQ(plan_route(c, kLayers), (std::vector<std::string>{"81.0.0.1:1", "84.0.0.1:1"}));
    std::mt19937_64 rng(5);
    for (int i = 0; i < kPlans; ++i) {
        const auto plan = plan_circuit(c, kLayers, {}, PlannerConfig{}, true, false, rng);
        ASSERT_TRUE(plan);
        const auto& s = plan->spans;
        EXPECT_FALSE(s == (std::vector<std::string>{"81.0.0.1:1", "82.0.0.1:1"}));
        if (s[0] == "83.0.0.1:1") {
            EXPECT_NE(plan->entry_relay, "85.0.0.1:1");
        }
    }
}

TEST(RoutePlanner, NetworkOfGroupsBySixteenAndFortyEightAndExemptsPrivateAddresses) {
    EXPECT_EQ(network_of("66.77.1.2:7000"), "66.77.0.0/16");
    EXPECT_EQ(network_of("[2001:db8:1:2::5]:7000"), "2001:0db8:0001::/48");
    EXPECT_EQ(network_of("[::ffff:66.77.9.9]:7000"), "66.77.0.0/16");
    EXPECT_EQ(network_of("172.32.0.1:1"), "172.32.0.0/16");    // just past 172.16/12
    EXPECT_EQ(network_of("100.128.0.1:1"), "100.128.0.0/16");  // just past 100.64/10
    EXPECT_EQ(network_of("Node.Example.org:7000"), "host node.example.org");
    for (const char* exempt : {"127.0.0.1:7000", "10.1.2.3:1", "172.20.0.1:1", "192.168.1.1:1", "100.64.0.1:1", "169.254.1.1:1",
                               "[fd00::1]:1", "[fe80::1]:1", "[::1]:1", "0.0.0.0:1", "localhost:7000"})
        EXPECT_EQ(network_of(exempt), "") << exempt;
    EXPECT_EQ(network_of(kHexId + "@1.2.3.4:5"), "1.2.0.0/16");  // a relayed node: its relay's network
}

TEST(RoutePlanner, NoTwoHopsOfACircuitShareANetworkUnlessItIsPrivate) {
    // Spans 0:4 and 4:8 in one /16 (v4) or /48 (v6) never pair; a second
    // network in the same cost class makes the circuit possible.
    for (const auto& [a, b, other] : {std::tuple{"5.6.1.1:1", "5.6.2.2:1", "5.7.0.1:1"},
                                      std::tuple{"[2001:db8:1:1::1]:1", "[2001:db8:1:2::1]:1", "[2001:db8:2::1]:1"}}) {
        std::vector<Candidate> c = {node(a, 0, 4, 0.001, 0.001, 1), node(b, 4, 8, 0.001, 0.001, 2), node(other, 4, 8, 0.001, 0.001, 3)};
        std::mt19937_64 rng(9);
        for (int i = 0; i < 50; ++i)
            EXPECT_EQ(plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng)->spans, (std::vector<std::string>{a, other}));
        c.pop_back();
        std::string why;
        EXPECT_FALSE(plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng, &why));
        EXPECT_NE(why.find("in one network"), std::string::npos) << why;
        EXPECT_EQ(plan_route(c, kLayers).size(), 2u);  // trusted: the operator's nodes may share a network
    }
    // One machine or one LAN: distinct identities are enough.
    for (const char* host : {"127.0.0.1", "192.168.1.7"}) {
        std::vector<Candidate> c;
        for (int i = 0; i < 4; ++i) c.push_back(node(std::string(host) + ":" + std::to_string(7000 + i), 0, i ? 0 : kLayers, 0.01, 0.001, 1 + i));
        std::mt19937_64 rng(1);
        const auto plan = plan_circuit(c, kLayers, {}, PlannerConfig{}, true, true, rng);
        ASSERT_TRUE(plan) << host;
        EXPECT_NE(plan->entry_relay, plan->exit_relay);
    }
}

TEST(RoutePlanner, RelayedAddressCountsItsRelaysNetworkAndAddressAndItsOwnId) {
    // Span "ID@1.2.3.4:5": the relay at 1.2.3.4:5, a node in 1.2/16 and a
    // node under ID's key all clash with it; 9.9.9.9 does not.
    std::vector<Candidate> c = {node(kHexId + "@1.2.3.4:5", 0, kLayers, 0.01, 0.01, 1), node("1.2.3.4:5", 0, 0, 0, 0.01, 2),
                                node("1.2.200.1:5", 0, 0, 0, 0.01, 3), node("8.8.8.8:5", 0, 0, 0, 0.01, 4), node("9.9.9.9:5", 0, 0, 0, 0.01, 5)};
    c[3].identity[0] = 0xab;  // 8.8.8.8 is the relayed node itself, under its key
    c[3].identity[31] = 0;
    std::mt19937_64 rng(2);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(plan_circuit(c, kLayers, {}, PlannerConfig{}, true, false, rng)->entry_relay, "9.9.9.9:5");
    // On loopback the network rule is off, yet the relay's own address still clashes.
    c = {node(kHexId + "@127.0.0.1:5", 0, kLayers, 0.01, 0.01, 1), node("127.0.0.1:5", 0, 0, 0, 0.01, 2), node("127.0.0.1:6", 0, 0, 0, 0.01, 3)};
    for (int i = 0; i < 50; ++i) EXPECT_EQ(plan_circuit(c, kLayers, {}, PlannerConfig{}, false, true, rng)->exit_relay, "127.0.0.1:6");
    // Two nodes behind one relay may both be spans (the NAT lab's swarm: both homes use one relay).
    const std::string other_id(64, 'c');
    c = {node(kHexId + "@100.64.0.2:5", 0, kLayers / 2, 0.01, 0.01, 1), node(other_id + "@100.64.0.2:5", kLayers / 2, kLayers, 0.01, 0.01, 2),
         node("100.64.0.2:5", 0, 0, 0, 0.01, 3)};
    const auto route = plan_circuit(c, kLayers, {}, PlannerConfig{}, false, false, rng);
    ASSERT_TRUE(route);
    EXPECT_EQ(route->spans.size(), 2u);
}

TEST(RoutePlanner, ExplainsWhyNoCircuitCanBeBuilt) {
    std::vector<Candidate> c = {node("11.0.0.1:1", 0, kLayers, 0.01, 0.01, 1), node("12.0.0.1:1", 0, 0, 0, 0.01, 2),
                                node("12.0.0.2:1", 0, 0, 0, 0.01, 3)};  // both relays in 12.0/16
    std::mt19937_64 rng(4);
    std::string why;
    EXPECT_FALSE(plan_circuit(c, kLayers, {}, PlannerConfig{}, true, true, rng, &why));
    EXPECT_NE(why.find("needs 2 relay(s)"), std::string::npos) << why;
    EXPECT_NE(why.find("found 1 among 2"), std::string::npos) << why;
    std::printf("no-circuit explanations, e.g.: %s\n", why.c_str());
    EXPECT_TRUE(plan_circuit(c, kLayers, {}, PlannerConfig{}, true, false, rng, &why));
    EXPECT_FALSE(plan_circuit(c, kLayers, {"11.0.0.1:1"}, PlannerConfig{}, true, true, rng, &why));
    EXPECT_NE(why.find("no route covers layers 0:8"), std::string::npos) << why;
    std::printf("and: %s\n", why.c_str());
}

}  // namespace
}  // namespace llmn::client
