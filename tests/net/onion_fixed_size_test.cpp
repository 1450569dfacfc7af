// Onions have one size whatever the number of hops (net/onion.h): a hop sees
// kOnionBytes of ciphertext, peels its own slot and passes kOnionBytes on, so
// it cannot tell its place in the circuit. Before commit 756a490 each layer
// held the next one in `inner` (a sealed box inside a sealed box), so an onion
// grew by about 150 bytes per hop and told every relay how many hops followed;
// build_onion / peel_onion did not exist.
#include <gtest/gtest.h>

#include "net/onion.h"

namespace llmn::net {
namespace {

OnionLayer layer(int i, bool last) {
    OnionLayer l;
    l.role = uint8_t(i % 2);
    l.next_hop = last ? "" : "10.0.0." + std::to_string(i + 1) + ":7000";
    l.next_id = 1000 + uint64_t(i);
    l.next_hop_id.fill(uint8_t(i + 1));
    l.max_tokens = 64 + uint32_t(i);
    l.key_in.fill(uint8_t(0x40 + i));
    l.expires_unix = 1'900'000'000 + uint64_t(i);
    return l;
}

std::pair<std::vector<OnionKeys>, std::vector<uint8_t>> onion_of(size_t hops) {
    std::vector<OnionKeys> keys;
    std::vector<Key32> pks;
    std::vector<OnionLayer> layers;
    for (size_t i = 0; i < hops; ++i) {
        keys.push_back(OnionKeys::generate());
        pks.push_back(keys.back().pk);
        layers.push_back(layer(int(i), i + 1 == hops));
    }
    return {keys, build_onion(pks, layers)};
}

TEST(OnionFixedSize, OneThreeAndTwelveHopsGiveTheSameSize) {
    for (size_t hops : {1, 3, 12}) EXPECT_EQ(onion_of(hops).second.size(), kOnionBytes) << hops << " hops";
}

TEST(OnionFixedSize, EachHopPeelsItsLayerAndPassesOnTheSameSize) {
    auto [keys, onion] = onion_of(3);
    std::vector<Key32> tags;
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(onion.size(), kOnionBytes) << "hop " << i;
        if (i > 0) EXPECT_FALSE(peel_onion(keys[0], onion)) << "hop " << i << "'s onion opens with hop 0's key";
        const auto p = peel_onion(keys[size_t(i)], onion);
        ASSERT_TRUE(p) << "hop " << i;
        const OnionLayer want = layer(i, i == 2);
        EXPECT_EQ(p->layer.role, want.role);
        EXPECT_EQ(p->layer.next_hop, want.next_hop);
        EXPECT_EQ(p->layer.next_id, want.next_id);
        EXPECT_EQ(p->layer.next_hop_id, want.next_hop_id);
        EXPECT_EQ(p->layer.max_tokens, want.max_tokens);
        EXPECT_EQ(p->layer.key_in, want.key_in);
        EXPECT_EQ(p->layer.expires_unix, want.expires_unix);
        EXPECT_NE(p->layer.peel_key, Key32{}) << "build_onion sets each peel key";
        EXPECT_EQ(p->next.size(), kOnionBytes) << "hop " << i << " passes on a full-size onion";
        for (const Key32& t : tags) EXPECT_NE(p->tag, t);
        tags.push_back(p->tag);
        onion = p->next;
    }
    // What the last hop passes on is filler: no key opens it.
    for (const OnionKeys& k : keys) EXPECT_FALSE(peel_onion(k, onion));
}

TEST(OnionFixedSize, WrongSizesAndTooManyHopsAreRefused) {
    auto [keys, onion] = onion_of(2);
    auto shorter = onion;
    shorter.pop_back();
    EXPECT_FALSE(peel_onion(keys[0], shorter));
    auto longer = onion;
    longer.push_back(0);
    EXPECT_FALSE(peel_onion(keys[0], longer));
    EXPECT_FALSE(peel_onion(OnionKeys::generate(), onion));
    EXPECT_THROW(onion_of(kOnionHops + 1), NetError);
    EXPECT_THROW(build_onion({}, {}), NetError);
    EXPECT_THROW(build_onion({OnionKeys::generate().pk}, {layer(0, true), layer(1, true)}), NetError) << "keys and layers differ in number";
    OnionLayer big = layer(0, false);
    big.next_hop = std::string(kOnionSlot, 'x');
    EXPECT_THROW(build_onion({OnionKeys::generate().pk}, {big}), NetError) << "a layer that does not fit its slot";
}

}  // namespace
}  // namespace llmn::net
