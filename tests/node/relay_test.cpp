// Nodes behind NAT, on loopback: a node that serves through a relay ("id@relay")
// takes part in routes like any other (tokens identical to one process), both
// through the relay's splice and over a hole-punched direct connection; probes
// find it through the relay's listing; the relay refuses what it cannot serve;
// and the dial-back check tells a reachable address from one that is not.
#include <gtest/gtest.h>

#include "client/circuit_session.h"
#include "client/remote_session.h"
#include "net/probe.h"
#include "net/reach.h"
#include "net/relay.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"

namespace llmn {
namespace {

using testing::NodeProcess;

std::string relay_model() {
    static const std::string path = [] {
        testing::RandomModelSpec spec;
        spec.arch = "llama";
        spec.n_layer = 6;
        spec.weight_type = tensor::DType::q8_0;
        return testing::write_random_model(spec, testing::temp_path("relay.gguf"));
    }();
    return path;
}

// Waits (bounded) until the relay lists `node_id` in its NODE_INFO.
bool relay_lists(const std::string& relay, const std::string& node_id) {
    for (int i = 0; i < 100; ++i) {
        for (const auto& p : net::probe_nodes({relay}, std::chrono::milliseconds(2000)))
            for (size_t off = 0; off + 32 <= p.info.relayed.size(); off += 32)
                if (net::to_hex(p.info.relayed.data() + off, 32) == node_id) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

struct RelayedSwarm {
    NodeProcess first{relay_model(), "0:2"};  // the relay, and the route's first hop
    NodeProcess relayed{{"serve", "-m", relay_model(), "--layers", "2:4", "--listen", "127.0.0.1:0", "-t", "1", "--relay", first.address()}};
    NodeProcess last{relay_model(), "4:6"};
};

TEST(Relay, ARelayedNodeServesARouteWithIdenticalTokensThroughTheRelayAndPunched) {
    RelayedSwarm s;
    const std::string via = s.relayed.field("address");
    ASSERT_EQ(via, s.relayed.field("node_id") + "@" + s.first.address());
    ASSERT_TRUE(relay_lists(s.first.address(), s.relayed.field("node_id"))) << s.relayed.log();
    const std::vector<int32_t> prompt = {1, 77, 12, 250};
    const auto want = testing::local_greedy(relay_model(), prompt, 24);
    for (int punch_ms : {0, 1500}) {  // the client's own link to the relayed hop: spliced, then punched
        client::RemoteConfig rc;
        rc.n_ctx = 64;
        rc.wire_f32 = true;
        rc.punch_window = std::chrono::milliseconds(punch_ms);
        tensor::ThreadPool pool(1);
        client::RemoteSession session(engine::Model::load(relay_model()), {s.first.address(), via, s.last.address()}, rc, pool);
        EXPECT_EQ(testing::greedy(session, prompt, 24), want) << "punch " << punch_ms << " ms; relay log: " << s.first.log();
    }
}

TEST(Relay, OnionCircuitsRunThroughARelayedSpanAndARelayedExitRelay) {
    RelayedSwarm s;
    NodeProcess entry({"serve", "-m", relay_model(), "--relay-only", "--listen", "127.0.0.1:0"});
    NodeProcess exit_relay({"serve", "-m", relay_model(), "--relay-only", "--listen", "127.0.0.1:0", "--relay", s.last.address()});
    ASSERT_TRUE(relay_lists(s.first.address(), s.relayed.field("node_id")));
    ASSERT_TRUE(relay_lists(s.last.address(), exit_relay.field("node_id")));
    client::CircuitPlan plan{{s.first.address(), s.relayed.field("address"), s.last.address()}, entry.address(), exit_relay.field("address")};
    client::RemoteConfig rc;
    rc.n_ctx = 64;
    rc.wire_f32 = true;
    tensor::ThreadPool pool(1);
    const std::vector<int32_t> prompt = {1, 40, 50, 60};
    client::CircuitSession session(engine::Model::load(relay_model()), plan, rc, pool);
    EXPECT_EQ(testing::greedy(session, prompt, 16), testing::local_greedy(relay_model(), prompt, 16));
}

TEST(Relay, ProbesFindTheRelayedNodeThroughItsRelay) {
    RelayedSwarm s;
    ASSERT_TRUE(relay_lists(s.first.address(), s.relayed.field("node_id")));
    const net::ProbeReport r = net::probe_swarm({s.first.address(), s.last.address()}, std::chrono::milliseconds(2000));
    ASSERT_EQ(r.nodes.size(), 3u) << r.summary(2);
    bool found = false;
    for (const auto& p : r.nodes)
        if (p.address == s.relayed.field("address")) {
            found = true;
            EXPECT_EQ(p.info.span_start, 2u);
            EXPECT_EQ(p.info.span_end, 4u);
            EXPECT_EQ(p.info.reach, uint8_t(net::Reach::relayed));
            EXPECT_EQ(p.info.relay_free, 0) << "a relayed node relays no one";
        }
    EXPECT_TRUE(found) << r.summary(2);
}

TEST(Relay, ARelayGivesEachRelayedNodeAtMostItsLinkCap) {
    NodeProcess relay({"serve", "-m", relay_model(), "--layers", "0:2", "--listen", "127.0.0.1:0", "-t", "1", "--relay-links", "1"});
    NodeProcess relayed({"serve", "-m", relay_model(), "--layers", "0:6", "--listen", "127.0.0.1:0", "-t", "1", "--relay", relay.address()});
    ASSERT_TRUE(relay_lists(relay.address(), relayed.field("node_id")));
    client::RemoteConfig rc;
    rc.n_ctx = 32;
    rc.punch_window = std::chrono::milliseconds(0);  // both sessions through the relay
    tensor::ThreadPool pool(1);
    client::RemoteSession first(engine::Model::load(relay_model()), {relayed.field("address")}, rc, pool);
    try {
        client::RemoteSession second(engine::Model::load(relay_model()), {relayed.field("address")}, rc, pool);
        FAIL() << "a second spliced link went past a cap of 1";
    } catch (const client::RemoteError& e) {
        EXPECT_NE(std::string(e.what()).find("links through this relay are in use"), std::string::npos) << e.what();
    }
    std::vector<float> logits;
    first.eval({1, 2, 3}, logits);  // the first link still works
    EXPECT_FALSE(logits.empty());
}

TEST(Relay, AnUnknownNodeOrADeadRelayIsAClearError) {
    NodeProcess relay(relay_model(), "0:2");
    const std::string nobody = std::string(64, 'a') + "@" + relay.address();
    const net::ProbeReport r = net::probe_swarm({nobody, "127.0.0.1:1"}, std::chrono::milliseconds(1500));
    ASSERT_EQ(r.failed.size(), 2u);
    EXPECT_NE(r.failed[0].reason.find("not relayed here"), std::string::npos) << r.failed[0].reason;
    EXPECT_EQ(r.failed[1].reason, "refused");
    EXPECT_NE(r.summary(2).find("2 nodes found, none reachable: "), std::string::npos) << r.summary(2);
}

TEST(DialBack, TellsAReachableAddressFromAClosedPortAndAnotherNode) {
    NodeProcess helper(relay_model(), "0:2"), asker(relay_model(), "2:4");
    const uint16_t port = uint16_t(std::stoi(asker.address().substr(asker.address().rfind(':') + 1)));
    net::Key32 id{};
    const std::string hex = asker.field("node_id");
    for (size_t i = 0; i < 32; ++i) id[i] = uint8_t(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    const auto ok = net::ask_dial_back(helper.address(), port, id, {}, std::chrono::seconds(5));
    EXPECT_EQ(ok.reachable, 1) << ok.text;
    EXPECT_EQ(ok.observed.rfind("127.0.0.1:", 0), 0u) << ok.observed;
    const auto closed = net::ask_dial_back(helper.address(), 1, id, {}, std::chrono::seconds(5));
    EXPECT_EQ(closed.reachable, 0);
    EXPECT_NE(closed.text.find("refused"), std::string::npos) << closed.text;
    net::Key32 other = id;
    other[0] ^= 1;
    const auto wrong = net::ask_dial_back(helper.address(), port, other, {}, std::chrono::seconds(5));
    EXPECT_EQ(wrong.reachable, 0) << "another node's port must not pass as ours";
    EXPECT_NE(wrong.text.find("not the expected"), std::string::npos) << wrong.text;
}

}  // namespace
}  // namespace llmn
