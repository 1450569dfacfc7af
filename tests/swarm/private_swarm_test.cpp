// Private swarms on the DHT: the info-hash and the record salt are keyed
// digests, different for every key and from the public swarm's, and the key
// appears in nothing that is published. On a small DHT on 127.0.0.1, only a
// node with the key finds the announcer and fetches its record.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <thread>

#include "net/swarm_key.h"
#include "swarm/dht.h"

namespace llmn::swarm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

net::Key32 key_of(uint8_t seed) {
    net::Key32 k;
    for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed * 29 + 11 * i);
    return k;
}

// True when any 8 consecutive bytes of `secret` occur in `haystack`.
bool leaks(const std::string& haystack, const net::Key32& secret) {
    for (size_t i = 0; i + 8 <= secret.size(); ++i)
        if (haystack.find(std::string(reinterpret_cast<const char*>(secret.data()) + i, 8)) != std::string::npos) return true;
    return false;
}
template <size_t N>
std::string bytes(const std::array<uint8_t, N>& a) {
    return std::string(reinterpret_cast<const char*>(a.data()), N);
}

TEST(PrivateSwarm, InfoHashDependsOnTheKey) {
    const net::Key32 model = net::digest256("private-model"), other_model = net::digest256("other-model");
    const auto pub = Dht::swarm_hash(model);
    const auto k1 = Dht::swarm_hash(model, key_of(1));
    const auto k2 = Dht::swarm_hash(model, key_of(2));
    EXPECT_NE(pub, k1);
    EXPECT_NE(pub, k2);
    EXPECT_NE(k1, k2);
    EXPECT_EQ(Dht::swarm_hash(model, key_of(1)), k1);           // every member computes the same
    EXPECT_NE(Dht::swarm_hash(other_model, key_of(1)), k1);     // one swarm per model
    EXPECT_EQ(Dht::swarm_hash(model, std::nullopt), pub);       // no key: the public swarm, unchanged
}

TEST(PrivateSwarm, RecordSaltDependsOnTheKeyAndIsTheModelIdWithout) {
    const net::Key32 model = net::digest256("private-model");
    EXPECT_EQ(Dht::record_salt(model), model);
    const net::Key32 s1 = Dht::record_salt(model, key_of(1)), s2 = Dht::record_salt(model, key_of(2));
    EXPECT_NE(s1, model);
    EXPECT_NE(s1, s2);
    EXPECT_EQ(Dht::record_salt(model, key_of(1)), s1);
}

TEST(PrivateSwarm, NeitherTheKeyNorItsSubkeysAppearInWhatIsPublished) {
    const net::Key32 model = net::digest256("private-model");
    for (uint8_t seed = 1; seed <= 20; ++seed) {
        const net::Key32 key = key_of(seed);
        const std::string published = bytes(Dht::swarm_hash(model, key)) + bytes(Dht::record_salt(model, key));
        EXPECT_FALSE(leaks(published, key)) << "key " << int(seed);
        for (auto use : {net::SwarmKeyUse::dht, net::SwarmKeyUse::link_proof, net::SwarmKeyUse::link_session})
            EXPECT_FALSE(leaks(published, net::swarm_subkey(key, use))) << "key " << int(seed);
    }
}

Dht::Config local_config(std::optional<net::Key32> key) {
    Dht::Config c;
    c.listen = "127.0.0.1:0";
    c.lan_discovery = false;
    c.port_mapping = false;
    c.one_machine = true;
    c.swarm_key = key;
    return c;
}

bool eventually(std::chrono::milliseconds limit, const std::function<bool()>& pred) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return pred();
}

TEST(PrivateSwarm, OnlyNodesWithTheKeyFindTheAnnouncerAndItsRecord) {
    Dht::Config sc = local_config(std::nullopt);
    sc.standalone = true;
    Dht seed(sc);
    const std::string bootstrap = "127.0.0.1:" + std::to_string(seed.port());
    auto joined = [&](std::optional<net::Key32> key) {
        Dht::Config c = local_config(key);
        c.bootstrap = {bootstrap};
        return std::make_unique<Dht>(c);
    };
    auto announcer = joined(key_of(1));
    auto member = joined(key_of(1));
    auto outsider = joined(std::nullopt);
    auto stranger = joined(key_of(2));
    ASSERT_TRUE(eventually(20s, [&] { return seed.routing_table_size() >= 4; })) << seed.routing_table_size();

    const net::Key32 model = net::digest256("private-swarm-test-model");
    const net::Identity id = net::Identity::generate();
    announcer->announce(model, 17001);
    NodeRecord r;
    r.node_id = id.public_key();
    r.address = "127.0.0.1:17001";
    r.span_start = 0;
    r.span_end = 4;
    r.n_layer = 4;
    r.model_id = model;
    r.version = "test";
    r.expires_unix = uint64_t(std::time(nullptr)) + 600;
    r.sign(id);
    announcer->publish(r, id);

    std::vector<std::string> got;
    ASSERT_TRUE(eventually(30s, [&] {
        got = member->peers(model, 1s);
        return std::count(got.begin(), got.end(), "127.0.0.1:17001") == 1;
    })) << "a member with the key did not find the announcer";
    std::optional<NodeRecord> rec;
    ASSERT_TRUE(eventually(15s, [&] { return (rec = member->fetch(id.public_key(), model, 3s)).has_value(); }));
    EXPECT_EQ(rec->encode(), r.encode());

    // The member found it, so the DHT holds it: the others look where the key does not lead them.
    for (Dht* other : {outsider.get(), stranger.get()}) {
        got = other->peers(model, 2s);
        EXPECT_EQ(std::count(got.begin(), got.end(), "127.0.0.1:17001"), 0);
        EXPECT_FALSE(other->fetch(id.public_key(), model, 3s).has_value());
    }
}

}  // namespace
}  // namespace llmn::swarm
