// Many DHT nodes on 127.0.0.1, all bootstrapped from one seed, with the
// one-machine settings and LSD / UPnP / NAT-PMP off. Every wait is bounded.
#include "swarm/dht.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <thread>

namespace llmn::swarm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// LLM_NODE_SWARM_NODES=40 runs the same tests on a bigger swarm (timings).
const int kNodes = std::getenv("LLM_NODE_SWARM_NODES") ? std::atoi(std::getenv("LLM_NODE_SWARM_NODES")) : 8;
constexpr auto kJoinDeadline = 20s;
constexpr auto kFindDeadline = 30s;

Dht::Config local_config() {
    Dht::Config c;
    c.listen = "127.0.0.1:0";
    c.lan_discovery = false;
    c.port_mapping = false;
    c.one_machine = true;
    return c;
}

// Polls `pred` every 50 ms until it holds or `limit` passes.
bool eventually(std::chrono::milliseconds limit, const std::function<bool()>& pred) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return pred();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t unix_now() { return uint64_t(std::time(nullptr)); }

class LocalSwarm : public ::testing::Test {
protected:
    void SetUp() override {
        auto t0 = Clock::now();
        Dht::Config sc = local_config();
        sc.standalone = true;
        seed_ = std::make_unique<Dht>(sc);
        ASSERT_NE(seed_->port(), 0);
        for (int i = 0; i < kNodes; ++i) {
            Dht::Config c = local_config();
            c.bootstrap = {"127.0.0.1:" + std::to_string(seed_->port())};
            nodes_.push_back(std::make_unique<Dht>(c));
        }
        // The seed hears of every node as it joins; each node's own table
        // fills over the next seconds, which the tests below wait out.
        bool joined = eventually(std::chrono::duration_cast<std::chrono::milliseconds>(kJoinDeadline),
                                 [&] { return seed_->routing_table_size() >= size_t(kNodes); });
        ASSERT_TRUE(joined) << "the seed knows " << seed_->routing_table_size() << " of " << kNodes << " nodes after "
                            << kJoinDeadline.count() << " s";
        std::cout << "[ swarm    ] seed knows all " << kNodes << " nodes " << seconds_since(t0) << " s after start\n";
        t_start_ = t0;
    }
    void TearDown() override {
        auto t0 = Clock::now();
        nodes_.clear();
        seed_.reset();
        std::cout << "[ swarm    ] shutdown took " << seconds_since(t0) << " s\n";
    }

    NodeRecord record_for(const net::Identity& id, const net::Key32& model, uint16_t port) {
        NodeRecord r;
        r.address = "127.0.0.1:" + std::to_string(port);
        r.span_start = 0;
        r.span_end = 12;
        r.n_layer = 24;
        r.model_id = model;
        r.tokens_per_s = 25.f;
        r.free_sessions = 2;
        r.version = "test";
        r.expires_unix = unix_now() + 600;
        r.sign(id);
        return r;
    }

    Clock::time_point t_start_;
    std::unique_ptr<Dht> seed_;
    std::vector<std::unique_ptr<Dht>> nodes_;
};

TEST_F(LocalSwarm, EveryNodeFindsAllAnnouncersOfAModel) {
    const net::Key32 model = net::digest256("swarm-test-model");
    const net::Key32 other_model = net::digest256("another-model");
    const int announcers = kNodes / 2 + 1;
    std::vector<std::string> expected;
    auto t0 = Clock::now();
    for (int i = 0; i < announcers; ++i) {
        uint16_t serving = uint16_t(20000 + i);
        nodes_[size_t(i)]->announce(model, serving);
        expected.push_back("127.0.0.1:" + std::to_string(serving));
    }
    nodes_.back()->announce(other_model, 29999);
    std::sort(expected.begin(), expected.end());

    std::vector<Dht*> askers{seed_.get()};
    for (auto& n : nodes_) askers.push_back(n.get());
    for (size_t k = 0; k < askers.size(); ++k) {
        // An announcer finds the others, never itself (askers[k] is nodes_[k - 1]).
        std::vector<std::string> others = expected;
        const std::string own = "127.0.0.1:" + std::to_string(20000 + int(k) - 1);
        if (k >= 1 && int(k) <= announcers) others.erase(std::find(others.begin(), others.end(), own));
        std::vector<std::string> got;
        bool all = eventually(std::chrono::duration_cast<std::chrono::milliseconds>(kFindDeadline), [&] {
            got = askers[k]->peers(model, 1s);
            std::sort(got.begin(), got.end());
            return std::includes(got.begin(), got.end(), others.begin(), others.end());
        });
        EXPECT_TRUE(all) << "asker " << k << " found " << got.size() << " of " << others.size();
        std::cout << "[ swarm    ] asker " << k << " done at " << seconds_since(t0) << " s\n";
        EXPECT_EQ(std::count(got.begin(), got.end(), "127.0.0.1:29999"), 0) << "another model's node leaked in";
        if (k >= 1 && int(k) <= announcers) {
            EXPECT_EQ(std::count(got.begin(), got.end(), own), 0) << "asker " << k << " found itself";
        }
    }
    std::cout << "[ swarm    ] " << askers.size() << " askers each found all " << announcers << " announcers "
              << seconds_since(t0) << " s after the announces, " << seconds_since(t_start_)
              << " s after the first node started\n";
}

TEST_F(LocalSwarm, PeersOfAnUnannouncedModelIsEmptyAtTheDeadline) {
    auto t0 = Clock::now();
    EXPECT_TRUE(nodes_[0]->peers(net::digest256("nobody-serves-this"), 1500ms).empty());
    EXPECT_LT(seconds_since(t0), 3.0);
}

TEST_F(LocalSwarm, PublishedRecordIsFetchedByAnotherNode) {
    auto id = net::Identity::generate();
    const net::Key32 model = net::digest256("swarm-test-model");
    NodeRecord r = record_for(id, model, 7001);
    auto t0 = Clock::now();
    nodes_[0]->publish(r, id);
    std::optional<NodeRecord> got;
    ASSERT_TRUE(eventually(15000ms, [&] {
        got = nodes_[kNodes - 1]->fetch(id.public_key(), model, 3s);
        return got.has_value();
    }));
    std::cout << "[ swarm    ] record fetched " << seconds_since(t0) << " s after publish\n";
    EXPECT_EQ(got->encode(), r.encode());

    // An update (more free sessions) replaces it: the put carries a higher seq.
    r.free_sessions = 7;
    r.sign(id);
    nodes_[0]->publish(r, id);
    EXPECT_TRUE(eventually(15000ms, [&] {
        got = nodes_[kNodes - 2]->fetch(id.public_key(), model, 3s);
        return got && got->free_sessions == 7;
    }));
}

TEST_F(LocalSwarm, PublishRefusesARecordOfAnotherNode) {
    auto id = net::Identity::generate();
    NodeRecord r = record_for(net::Identity::generate(), net::digest256("m"), 7002);
    EXPECT_THROW(nodes_[0]->publish(r, id), std::invalid_argument);
}

// All the bad items go out together with one good one from the same node;
// once the good one is readable, the bad ones have been stored too, and
// fetch() must reject each of them after a complete lookup.
TEST_F(LocalSwarm, ForgedForeignAndExpiredRecordsAreIgnored) {
    auto id = net::Identity::generate();
    const net::Key32 model = net::digest256("swarm-test-model");
    const net::Key32 forged_model = net::digest256("forged");
    const net::Key32 foreign_salt = net::digest256("foreign-salt");
    const net::Key32 expired_model = net::digest256("expired");
    const net::Key32 garbage_model = net::digest256("garbage");
    const net::Key32 stolen_model = net::digest256("stolen");

    NodeRecord forged = record_for(id, forged_model, 7003);
    forged.tokens_per_s = 1e6f;  // changed after signing
    nodes_[1]->publish(forged, id);
    // A valid record for model A stored under the salt of model B.
    nodes_[1]->publish_bytes(foreign_salt, record_for(id, model, 7004).encode(), id);
    NodeRecord expired = record_for(id, expired_model, 7005);
    expired.expires_unix = unix_now() - 1;
    expired.sign(id);
    nodes_[1]->publish(expired, id);
    nodes_[1]->publish_bytes(garbage_model, std::string(300, '\x01'), id);
    // Another node's valid record, re-published under our key.
    auto victim = net::Identity::generate();
    nodes_[1]->publish_bytes(stolen_model, record_for(victim, stolen_model, 7006).encode(), id);
    NodeRecord good = record_for(id, model, 7007);
    nodes_[1]->publish(good, id);

    Dht& reader = *nodes_[kNodes - 1];
    ASSERT_TRUE(eventually(15000ms, [&] { return reader.fetch(id.public_key(), model, 3s).has_value(); }));
    EXPECT_FALSE(reader.fetch(id.public_key(), forged_model, 3s)) << "bad signature";
    EXPECT_FALSE(reader.fetch(id.public_key(), foreign_salt, 3s)) << "record names another model";
    EXPECT_FALSE(reader.fetch(id.public_key(), expired_model, 3s)) << "expired";
    EXPECT_FALSE(reader.fetch(id.public_key(), garbage_model, 3s)) << "undecodable";
    EXPECT_FALSE(reader.fetch(id.public_key(), stolen_model, 3s)) << "names another node";
}

std::unique_ptr<Dht> client_of(const Dht& seed) {
    Dht::Config c = local_config();
    c.bootstrap = {"127.0.0.1:" + std::to_string(seed.port())};
    return std::make_unique<Dht>(c);
}

std::unique_ptr<Dht> standalone_seed() {
    Dht::Config c = local_config();
    c.standalone = true;
    return std::make_unique<Dht>(c);
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::count(v.begin(), v.end(), s) > 0; }

// Field report: a lookup made as soon as the Dht was built sometimes never
// went out: libtorrent starts its DHT only once its routers' names resolve.
// Each fresh client here names the seed "localhost", looks up at once with
// no wait of its own, and must find the node (before the fix 0-4 of 10 did).
TEST(DhtLookup, ALookupRightAfterStartFindsTheAnnouncedNode) {
    auto seed = standalone_seed();
    auto announcer = client_of(*seed);
    const net::Key32 model = net::digest256("lookup-at-start-model");
    announcer->announce(model, 22000);
    ASSERT_TRUE(eventually(20000ms, [&] { return has(seed->peers(model, 1s), "127.0.0.1:22000"); }))
        << "the seed never stored the announce";
    Dht::Config c = local_config();
    c.bootstrap = {"localhost:" + std::to_string(seed->port())};
    constexpr int kClients = 10;
    int found = 0;
    for (int i = 0; i < kClients; ++i) {
        auto t0 = Clock::now();
        Dht client(c);
        const std::vector<std::string> got = client.peers(model, 5s);
        const bool ok = has(got, "127.0.0.1:22000");
        found += ok;
        EXPECT_TRUE(ok) << "client " << i << " found " << got.size() << " nodes in " << seconds_since(t0) << " s";
        std::cout << "[ swarm    ] client " << i << " looked up in " << seconds_since(t0) << " s\n";
    }
    EXPECT_EQ(found, kClients);
}

TEST(DhtLookup, PeersLeavesOutTheCallersOwnAddress) {
    auto seed = standalone_seed();
    auto a = client_of(*seed);
    auto b = client_of(*seed);
    const net::Key32 model = net::digest256("own-address-model");
    a->announce(model, 22101);
    b->announce(model, 22102);
    std::vector<std::string> from_a, from_b;
    bool each_sees_other = eventually(20000ms, [&] {
        from_a = a->peers(model, 1s);
        from_b = b->peers(model, 1s);
        EXPECT_FALSE(has(from_a, "127.0.0.1:22101")) << "a found itself";
        EXPECT_FALSE(has(from_b, "127.0.0.1:22102")) << "b found itself";
        return has(from_a, "127.0.0.1:22102") && has(from_b, "127.0.0.1:22101");
    });
    EXPECT_TRUE(each_sees_other) << "a found " << from_a.size() << ", b found " << from_b.size();
    // The seed announced nothing: it lists both.
    EXPECT_TRUE(eventually(10000ms, [&] {
        auto got = seed->peers(model, 1s);
        return has(got, "127.0.0.1:22101") && has(got, "127.0.0.1:22102");
    }));
}

TEST(DhtJoin, StandaloneIsBootstrappedAtOnceAndAClientSoonAfter) {
    auto seed = standalone_seed();
    EXPECT_TRUE(seed->wait_bootstrapped(0ms));
    auto t0 = Clock::now();
    auto client = client_of(*seed);
    EXPECT_TRUE(client->wait_bootstrapped(10s));
    std::cout << "[ swarm    ] client bootstrapped in " << seconds_since(t0) << " s\n";
}

TEST(DhtJoin, NoAnswerFromTheBootstrapNodeEndsTheWaitsAtTheirTimeouts) {
    Dht::Config c = local_config();
    c.bootstrap = {"127.0.0.1:9"};  // discard: nothing answers on 127.0.0.1
    Dht lonely(c);
    auto t0 = Clock::now();
    EXPECT_FALSE(lonely.wait_bootstrapped(500ms));
    EXPECT_GE(seconds_since(t0), 0.49);
    t0 = Clock::now();
    EXPECT_TRUE(lonely.peers(net::digest256("any-model"), 700ms).empty());
    EXPECT_GE(seconds_since(t0), 0.69);
    EXPECT_LT(seconds_since(t0), 2.0);
}

// Nodes started together: the seed's socket may open after a node's first
// ping. The node pings again until it answers (it once stayed alone).
TEST(DhtJoin, ASeedThatStartsAfterTheNodeIsJoinedStill) {
    uint16_t port = standalone_seed()->port();  // a free port, closed again
    Dht::Config c = local_config();
    c.bootstrap = {"127.0.0.1:" + std::to_string(port)};
    Dht early(c);
    EXPECT_FALSE(early.wait_bootstrapped(300ms));
    Dht::Config sc = local_config();
    sc.standalone = true;
    sc.listen = "127.0.0.1:" + std::to_string(port);
    Dht seed(sc);
    auto t0 = Clock::now();
    EXPECT_TRUE(early.wait_bootstrapped(5s));
    std::cout << "[ swarm    ] joined " << seconds_since(t0) << " s after the seed started\n";
}

TEST(DhtReach, MapPortWithPortMappingOffIsANoOp) {
    auto dht = standalone_seed();  // local_config(): port_mapping off
    dht->map_port(7300);
    Dht::Reach r = dht->reach();
    EXPECT_EQ(r.mapped_port, 0);
    EXPECT_TRUE(r.mapped_by.empty());
    EXPECT_TRUE(r.mapping_error.empty());
    // On 127.0.0.1 nobody can tell us our external IP: wait_reach ends at its timeout.
    auto t0 = Clock::now();
    r = dht->wait_reach(300ms, true);
    EXPECT_GE(seconds_since(t0), 0.29);
    EXPECT_LT(seconds_since(t0), 2.0);
    EXPECT_TRUE(r.external_ip.empty());
    EXPECT_EQ(r.mapped_port, 0);
}

TEST(DhtConfig, MalformedAddressesAreRejected) {
    Dht::Config c = local_config();
    c.listen = "127.0.0.1";
    EXPECT_THROW(Dht{c}, std::runtime_error);
    c = local_config();
    c.bootstrap = {"127.0.0.1:99999"};
    EXPECT_THROW(Dht{c}, std::runtime_error);
    c = local_config();
    c.standalone = true;
    c.bootstrap = {"127.0.0.1:6881"};
    EXPECT_THROW(Dht{c}, std::runtime_error);
}

}  // namespace
}  // namespace llmn::swarm
