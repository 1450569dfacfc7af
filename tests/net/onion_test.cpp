// The sealing of onion circuits: a layer opens only with its hop's key; an
// end-to-end cell opens only with its key at its own sequence number, so a
// relay can neither read, alter, replay nor reorder it.
#include <gtest/gtest.h>

#include "net/onion.h"

namespace llmn::net {
namespace {

TEST(Onion, ALayerOpensOnlyWithItsHopsKey) {
    const OnionKeys hop = OnionKeys::generate(), other = OnionKeys::generate();
    const std::vector<uint8_t> plain = {1, 2, 3, 4, 5};
    const auto box = seal_to(hop.pk, plain);
    EXPECT_EQ(box.size(), plain.size() + 48);
    EXPECT_EQ(open_sealed(hop, box), plain);
    EXPECT_FALSE(open_sealed(other, box));
    auto flipped = box;
    flipped[flipped.size() / 2] ^= 1;
    EXPECT_FALSE(open_sealed(hop, flipped));
    EXPECT_FALSE(open_sealed(hop, {1, 2, 3}));
    EXPECT_NE(seal_to(hop.pk, plain), box) << "a fresh ephemeral key per seal";
}

TEST(Onion, CellsOpenOnlyInOrderWithTheirKey) {
    const Key32 key = random_key();
    const std::vector<uint8_t> a(100, 7), b(100, 9);
    const auto c0 = seal_cell(key, 0, a), c1 = seal_cell(key, 1, b);
    EXPECT_EQ(open_cell(key, 0, c0), a);
    EXPECT_EQ(open_cell(key, 1, c1), b);
    EXPECT_FALSE(open_cell(key, 1, c0)) << "replayed at a later position";
    EXPECT_FALSE(open_cell(key, 0, c1)) << "reordered";
    EXPECT_FALSE(open_cell(random_key(), 0, c0));
    auto tampered = c0;
    tampered.back() ^= 0x80;
    EXPECT_FALSE(open_cell(key, 0, tampered));
    EXPECT_FALSE(open_cell(key, 0, {}));
}

}  // namespace
}  // namespace llmn::net
