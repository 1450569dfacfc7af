#include <gtest/gtest.h>

#include "swarm/span_choice.h"

namespace llmn::swarm {
namespace {

TEST(SpanChoice, UncoveredLayersComeFirst) {
    const auto cov = layer_coverage({{0, 8, 10.0}}, 12);
    EXPECT_EQ(choose_span_start(cov, 4), 8);
    EXPECT_EQ(choose_span_start(cov, 6), 6);  // the window must hold all of 8..11
}

TEST(SpanChoice, WhenAllIsCoveredTheWeakestWindowWins) {
    const auto cov = layer_coverage({{0, 6, 50.0}, {6, 12, 5.0}, {0, 12, 1.0}}, 12);
    EXPECT_EQ(choose_span_start(cov, 4), 6);
}

TEST(SpanChoice, HysteresisKeepsANodeWhereItIsUnlessTheGainIsClear) {
    // Others: a 10 tok/s node on 0..4 (with us) and 8 tok/s on 4..8: not a clear gain.
    auto others = layer_coverage({{0, 4, 10.0}, {4, 8, 8.0}}, 8);
    EXPECT_FALSE(should_move(others, 0, 4, 10.0, choose_span_start(others, 4)));
    // 4..8 has only 1 tok/s: move.
    others = layer_coverage({{0, 4, 10.0}, {4, 8, 1.0}}, 8);
    EXPECT_TRUE(should_move(others, 0, 4, 10.0, choose_span_start(others, 4)));
    // The only node on 0..4 never leaves it uncovered for an equal gap elsewhere.
    others = layer_coverage({}, 8);
    EXPECT_FALSE(should_move(others, 0, 4, 10.0, 4));
}

TEST(SpanChoice, ANodeMovesToFillTheGapLeftByANodeThatWentAway) {
    // We serve 1..4; the others cover 0..3 and 5..6: layer 4 is a gap only we can... not fill from here.
    const auto others = layer_coverage({{0, 3, 10.0}, {5, 6, 10.0}}, 6);
    const int best = choose_span_start(others, 3);
    EXPECT_TRUE(best == 2 || best == 3) << best;  // either window fills both gap layers
    EXPECT_TRUE(should_move(others, 1, 3, 10.0, best));  // 3..6 leaves nothing uncovered, 1..4 leaves layer 4
}

TEST(SpanChoice, LayersThatFitRespectTheBudget) {
    EXPECT_EQ(layers_that_fit(1000, 200, 100, 0, 22), 8);
    EXPECT_EQ(layers_that_fit(100000, 0, 100, 0, 22), 22);
    EXPECT_EQ(layers_that_fit(100, 200, 100, 0, 22), 0);
}

}  // namespace
}  // namespace llmn::swarm
