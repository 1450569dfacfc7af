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
    // We (10 tok/s) serve 0..4 alongside a 10 tok/s node; 4..8 has 8 tok/s: not a clear gain.
    auto cov = layer_coverage({{0, 4, 10.0}, {0, 4, 10.0}, {4, 8, 8.0}}, 8);
    EXPECT_FALSE(should_move(cov, 0, 4, 10.0, choose_span_start(cov, 4)));
    // 4..8 has only 1 tok/s: move.
    cov = layer_coverage({{0, 4, 10.0}, {0, 4, 10.0}, {4, 8, 1.0}}, 8);
    EXPECT_TRUE(should_move(cov, 0, 4, 10.0, choose_span_start(cov, 4)));
    // The only node on 0..4 never leaves it uncovered.
    cov = layer_coverage({{0, 4, 10.0}}, 8);
    EXPECT_FALSE(should_move(cov, 0, 4, 10.0, choose_span_start(cov, 4)));
}

TEST(SpanChoice, LayersThatFitRespectTheBudget) {
    EXPECT_EQ(layers_that_fit(1000, 200, 100, 0, 22), 8);
    EXPECT_EQ(layers_that_fit(100000, 0, 100, 0, 22), 22);
    EXPECT_EQ(layers_that_fit(100, 200, 100, 0, 22), 0);
}

}  // namespace
}  // namespace llmn::swarm
