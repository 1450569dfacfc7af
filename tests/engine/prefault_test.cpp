// Warming weights: the chosen tensors are covered exactly (a span's blocks,
// the stages on request), and progress climbs to done == total.
#include <gtest/gtest.h>

#include "engine/prefault.h"
#include "support/random_model.h"
#include "support/test_support.h"

namespace llmn::engine {
namespace {

std::shared_ptr<const Model> random_model() {
    static const std::shared_ptr<const Model> m = [] {
        testing::RandomModelSpec spec;  // 4 layers, f32
        return Model::load(testing::write_random_model(spec, testing::temp_path("prefault-llama.gguf")));
    }();
    return m;
}

uint64_t stage_bytes(const Model& m) {
    uint64_t n = 0;
    for (const auto& t : m.file().tensors())
        if (t.name.rfind("blk.", 0) != 0) n += t.nbytes;
    return n;
}

TEST(Prefault, ProgressClimbsToTheTotalItReturns) {
    const auto m = random_model();
    const PrefaultParts all{0, m->config().n_layer, true};
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    const uint64_t n = prefault(*m, all, [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
    ASSERT_FALSE(calls.empty());
    for (size_t i = 0; i < calls.size(); ++i) {
        EXPECT_EQ(calls[i].second, n);
        EXPECT_LE(calls[i].first, n);
        if (i > 0) {
            EXPECT_GE(calls[i].first, calls[i - 1].first);
        }
    }
    EXPECT_EQ(calls.back().first, n);
    EXPECT_EQ(prefault_bytes(*m, all), n);
    // Everything, with at most the alignment padding between tensors on top.
    EXPECT_GE(n, m->weight_bytes());
    EXPECT_LT(n, m->weight_bytes() + m->file().tensors().size() * m->file().alignment());
}

TEST(Prefault, SpanCoversItsBlocksOnlyAndStagesAreOptional) {
    const auto m = random_model();
    const uint64_t pad = m->file().tensors().size() * m->file().alignment();
    const uint64_t span = prefault(*m, {1, 3, false});
    EXPECT_GE(span, m->span_weight_bytes(1, 3));
    EXPECT_LT(span, m->span_weight_bytes(1, 3) + pad);
    EXPECT_LT(span, m->span_weight_bytes(0, 4));

    const uint64_t stages = prefault(*m, {0, 0, true});
    EXPECT_GE(stages, stage_bytes(*m));
    EXPECT_LT(stages, stage_bytes(*m) + pad);
}

TEST(Prefault, NothingChosenTouchesNothingAndStillReportsTheEnd) {
    const auto m = random_model();
    int calls = 0;
    uint64_t last_done = 1, last_total = 1;
    // Layers past the end are absent, not an error.
    EXPECT_EQ(prefault(*m, {10, 20, false}, [&](uint64_t d, uint64_t t) {
        ++calls;
        last_done = d;
        last_total = t;
    }), 0u);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(last_done, 0u);
    EXPECT_EQ(last_total, 0u);
}

}  // namespace
}  // namespace llmn::engine
