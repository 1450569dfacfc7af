// A model run as several layer spans in sequence equals the same model run as
// one span: the property every network node relies on.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/layer_span.h"
#include "engine/local_session.h"
#include "engine/stages.h"
#include "support/random_model.h"
#include "support/test_support.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {
namespace {

constexpr float kBatchVsDecodeTol = 1e-3f;  // same math, different summation grouping

// Logits [n, n_vocab] of `ids` run through spans cut at `cuts` (e.g. {2} = [0,2) + [2,L)).
std::vector<float> run_spans(std::shared_ptr<const Model> m, const std::vector<int32_t>& ids, std::vector<int> cuts,
                             tensor::ThreadPool& pool) {
    const int n = int(ids.size()), d = m->config().n_embd;
    cuts.insert(cuts.begin(), 0);
    cuts.push_back(m->config().n_layer);
    std::vector<float> hidden(size_t(n) * d), logits(size_t(n) * m->config().n_vocab);
    EmbeddingStage(m).embed(ids.data(), n, hidden.data());
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        LayerSpan span(m, cuts[i], cuts[i + 1], 64);
        span.forward(hidden.data(), n, 0, pool);
    }
    HeadStage(m).logits(hidden.data(), n, logits.data(), pool);
    return logits;
}

class SpanSplit : public ::testing::TestWithParam<std::string> {};

TEST_P(SpanSplit, TwoAndThreeSpansGiveTheSameLogitsAsOne) {
    testing::RandomModelSpec spec;
    spec.arch = GetParam();
    spec.weight_type = tensor::DType::q8_0;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path(spec.arch + "-split.gguf")));
    tensor::ThreadPool pool(2);
    const std::vector<int32_t> ids = {1, 299, 17, 42, 99, 5, 260, 7};
    const auto whole = run_spans(m, ids, {}, pool);
    for (std::vector<int> cuts : {std::vector<int>{1}, {2}, {3}, {1, 3}}) {
        const auto split = run_spans(m, ids, cuts, pool);
        ASSERT_EQ(split.size(), whole.size());
        for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(split[i], whole[i]) << "cut at " << cuts[0] << ", index " << i;
    }
}

TEST_P(SpanSplit, IncrementalDecodeMatchesOneBatch) {
    testing::RandomModelSpec spec;
    spec.arch = GetParam();
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path(spec.arch + "-decode.gguf")));
    tensor::ThreadPool pool(2);
    const std::vector<int32_t> ids = {1, 3, 200, 150, 280, 9, 33, 12, 270, 4};
    SessionConfig sc;
    sc.n_ctx = 32;
    LocalSession batch(m, sc, pool), step(m, sc, pool);
    std::vector<float> all, one;
    batch.eval(ids, all, true);
    const int nv = batch.n_vocab();
    for (size_t t = 0; t < ids.size(); ++t) {
        step.eval({ids[t]}, one);
        for (int i = 0; i < nv; ++i) ASSERT_NEAR(one[i], all[t * nv + i], kBatchVsDecodeTol) << "position " << t;
    }
}

TEST_P(SpanSplit, LogitsAreFiniteAndNotConstant) {
    testing::RandomModelSpec spec;
    spec.arch = GetParam();
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path(spec.arch + "-finite.gguf")));
    tensor::ThreadPool pool(1);
    const auto logits = run_spans(m, {1, 2, 3}, {}, pool);
    float lo = logits[0], hi = logits[0];
    for (float v : logits) {
        ASSERT_TRUE(std::isfinite(v));
        lo = std::min(lo, v), hi = std::max(hi, v);
    }
    EXPECT_GT(hi - lo, 1.0f);
}

INSTANTIATE_TEST_SUITE_P(EachArchitecture, SpanSplit, ::testing::Values("llama", "qwen2", "qwen3", "phi3"));

TEST(SpanSplitReal, SharedModelsSplitEqualsWhole) {
    LLMN_REQUIRE_SHARED();
    tensor::ThreadPool pool(2);
    for (const char* f : {"models/synthetic/llama-spm-q4_k_m.gguf", "models/synthetic/phi3-q5_k_m.gguf",
                          "models/synthetic/qwen3-f16.gguf", "models/real/llama-stories260k-f32.gguf"}) {
        auto m = Model::load(testing::shared_path(f));
        const std::vector<int32_t> ids = {1, 10, 20, 30, 40};
        const auto whole = run_spans(m, ids, {}, pool);
        const auto split = run_spans(m, ids, {m->config().n_layer / 2}, pool);
        EXPECT_EQ(split, whole) << f;
    }
}

TEST(LayerSpan, RejectsSpansOutsideTheModel) {
    testing::RandomModelSpec spec;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("bounds.gguf")));
    EXPECT_THROW(LayerSpan(m, 0, 5, 16), ModelError);
    EXPECT_THROW(LayerSpan(m, 2, 2, 16), ModelError);
    EXPECT_THROW(LayerSpan(m, -1, 2, 16), ModelError);
}

TEST(LayerSpan, ContextOverflowIsAnErrorNotACrash) {
    testing::RandomModelSpec spec;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("ctx.gguf")));
    tensor::ThreadPool pool(1);
    SessionConfig sc;
    sc.n_ctx = 4;
    LocalSession s(m, sc, pool);
    std::vector<float> logits;
    s.eval({1, 2, 3}, logits);
    EXPECT_THROW(s.eval({4, 5}, logits), std::out_of_range);
    EXPECT_THROW(s.eval({100000}, logits), std::out_of_range);
}

}  // namespace
}  // namespace llmn::engine

namespace llmn::engine {
namespace {

constexpr float kBatchedSessionsTol = 1e-4f;  // kernels may group tokens differently

// Decode steps of several sessions batched into one forward pass give each
// session what it would get alone: the property a node's batching relies on.
TEST(SpanRunner, BatchedSessionsMatchSeparateRuns) {
    testing::RandomModelSpec spec;
    spec.arch = "qwen2";
    spec.weight_type = tensor::DType::q8_0;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("batch.gguf")));
    auto w = std::make_shared<const SpanWeights>(m, 1, 3);
    tensor::ThreadPool pool(2);
    const int d = m->config().n_embd;
    std::vector<float> a(5 * d), b(2 * d);
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(float(i) * 0.37f);
    for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(float(i) * 0.11f);

    SpanRunner alone(w), together(w);
    KvCache ca(*w, 16), cb(*w, 16), ja(*w, 16), jb(*w, 16);
    // Prefill each session separately first (different lengths), then one batched decode step.
    std::vector<float> a_sep(a.begin(), a.begin() + 4 * d), b_sep(b.begin(), b.begin() + d);
    alone.forward(a_sep.data(), {SeqSlice{&ca, 0, 4}}, pool);
    alone.forward(b_sep.data(), {SeqSlice{&cb, 0, 1}}, pool);
    std::vector<float> a_last(a.begin() + 4 * d, a.end()), b_last(b.begin() + d, b.end());
    alone.forward(a_last.data(), {SeqSlice{&ca, 4, 1}}, pool);
    alone.forward(b_last.data(), {SeqSlice{&cb, 1, 1}}, pool);

    std::vector<float> a_pre(a.begin(), a.begin() + 4 * d), b_pre(b.begin(), b.begin() + d);
    together.forward(a_pre.data(), {SeqSlice{&ja, 0, 4}}, pool);
    together.forward(b_pre.data(), {SeqSlice{&jb, 0, 1}}, pool);
    std::vector<float> both(a.begin() + 4 * d, a.end());
    both.insert(both.end(), b.begin() + d, b.end());
    together.forward(both.data(), {SeqSlice{&ja, 4, 1}, SeqSlice{&jb, 1, 1}}, pool);

    for (int i = 0; i < d; ++i) {
        ASSERT_NEAR(both[i], a_last[i], kBatchedSessionsTol) << i;
        ASSERT_NEAR(both[d + i], b_last[i], kBatchedSessionsTol) << i;
    }
    EXPECT_EQ(ja.n_past(), 5);
    EXPECT_EQ(jb.n_past(), 2);
}

TEST(SpanRunner, RejectsASliceThatDoesNotFitBeforeTouchingAnything) {
    testing::RandomModelSpec spec;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("fit.gguf")));
    auto w = std::make_shared<const SpanWeights>(m, 0, 2);
    tensor::ThreadPool pool(1);
    SpanRunner r(w);
    KvCache ok(*w, 8), small(*w, 1);
    std::vector<float> h(3 * m->config().n_embd, 0.5f);
    EXPECT_THROW(r.forward(h.data(), {SeqSlice{&ok, 0, 1}, SeqSlice{&small, 0, 2}}, pool), std::out_of_range);
    EXPECT_EQ(ok.n_past(), 0);
}

}  // namespace
}  // namespace llmn::engine

namespace llmn::engine {
namespace {

// Prefills of different lengths from several sessions in one pass.
TEST(SpanRunner, BatchedPrefillsOfDifferentLengthsMatchSeparateRuns) {
    testing::RandomModelSpec spec;
    spec.arch = "qwen3";
    spec.n_layer = 6;
    spec.weight_type = tensor::DType::q8_0;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("prefills.gguf")));
    auto w = std::make_shared<const SpanWeights>(m, 0, 6);
    tensor::ThreadPool pool(2);
    const int d = m->config().n_embd;
    const std::vector<int> lens = {3, 5, 2, 7};
    std::vector<std::vector<float>> inputs;
    for (size_t s = 0; s < lens.size(); ++s) {
        std::vector<float> h(size_t(lens[s]) * d);
        for (size_t i = 0; i < h.size(); ++i) h[i] = std::sin(float(i * (s + 2)) * 0.13f);
        inputs.push_back(h);
    }
    SpanRunner runner(w);
    std::vector<std::unique_ptr<KvCache>> sep, joint;
    std::vector<float> all;
    std::vector<SeqSlice> slices;
    for (size_t s = 0; s < lens.size(); ++s) {
        sep.push_back(std::make_unique<KvCache>(*w, 16));
        joint.push_back(std::make_unique<KvCache>(*w, 16));
        all.insert(all.end(), inputs[s].begin(), inputs[s].end());
        slices.push_back({joint.back().get(), 0, lens[s]});
    }
    runner.forward(all.data(), slices, pool);
    size_t off = 0;
    for (size_t s = 0; s < lens.size(); ++s) {
        std::vector<float> h = inputs[s];
        runner.forward(h.data(), {SeqSlice{sep[s].get(), 0, lens[s]}}, pool);
        for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(all[off + i], h[i], kBatchedSessionsTol) << "session " << s << " index " << i;
        off += h.size();
    }
}

}  // namespace
}  // namespace llmn::engine
