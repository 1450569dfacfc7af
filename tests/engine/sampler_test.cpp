#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace llmn::engine {
namespace {

constexpr uint64_t test_seed = 1234;
// Allowed gap between an empirical frequency over 20000 draws and its probability
// (about 5 standard deviations for p near 0.5).
constexpr double freq_tolerance = 0.018;

SamplerConfig plain_config(float temp) {
    SamplerConfig c;
    c.temp = temp;
    c.top_k = 0;
    c.top_p = 1.0f;
    c.min_p = 0.0f;
    c.repeat_penalty = 1.0f;
    c.seed = test_seed;
    return c;
}

std::vector<float> test_logits() { return {0.1f, 2.5f, -1.0f, 2.4f, 0.0f, 1.9f, -3.0f, 2.45f}; }

TEST(Sampler, GreedyPicksArgmax) {
    Sampler s(plain_config(0.0f));
    auto logits = test_logits();
    EXPECT_EQ(s.sample(logits.data(), int32_t(logits.size()), {}), 1);
    logits[6] = 10.0f;
    EXPECT_EQ(s.sample(logits.data(), int32_t(logits.size()), {}), 6);
}

TEST(Sampler, GreedyTiesGoToLowestId) {
    Sampler s(plain_config(-1.0f));
    std::vector<float> logits = {0.0f, 3.0f, 1.0f, 3.0f, 3.0f};
    EXPECT_EQ(s.sample(logits.data(), 5, {}), 1);
}

TEST(Sampler, GreedySkipsNanAndExcluded) {
    Sampler s(plain_config(0.0f));
    std::vector<float> logits = {1.0f, std::nanf(""), 5.0f, 4.0f};
    EXPECT_EQ(s.sample(logits.data(), 4, {}), 2);
    s.set_excluded({2, 99, -5});
    EXPECT_EQ(s.sample(logits.data(), 4, {}), 3);
}

TEST(Sampler, SameSeedReplaysAndDifferentSeedsDiffer) {
    auto logits = test_logits();
    auto run = [&](uint64_t seed) {
        SamplerConfig c = plain_config(1.5f);
        c.seed = seed;
        Sampler s(c);
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits.data(), int32_t(logits.size()), {}));
        return out;
    };
    EXPECT_EQ(run(7), run(7));
    EXPECT_NE(run(7), run(8));
}

TEST(Sampler, ResetReplaysAFixedSeed) {
    auto logits = test_logits();
    Sampler s(plain_config(1.5f));
    std::vector<int32_t> a, b;
    for (int i = 0; i < 32; ++i) a.push_back(s.sample(logits.data(), int32_t(logits.size()), {}));
    s.reset();
    for (int i = 0; i < 32; ++i) b.push_back(s.sample(logits.data(), int32_t(logits.size()), {}));
    EXPECT_EQ(a, b);
    EXPECT_EQ(s.seed(), test_seed);
}

TEST(Sampler, RandomSeedIsDrawn) {
    SamplerConfig c = plain_config(1.0f);
    c.seed = random_seed;
    Sampler s(c);
    EXPECT_EQ(s.config().seed, random_seed);
    auto logits = test_logits();
    int32_t id = s.sample(logits.data(), int32_t(logits.size()), {});
    EXPECT_GE(id, 0);
    EXPECT_LT(id, int32_t(logits.size()));
}

TEST(Sampler, TopKOneEqualsGreedy) {
    SamplerConfig c = plain_config(2.0f);
    c.top_k = 1;
    Sampler s(c);
    auto logits = test_logits();
    for (int i = 0; i < 200; ++i) EXPECT_EQ(s.sample(logits.data(), int32_t(logits.size()), {}), 1);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
    SamplerConfig c = plain_config(50.0f);  // nearly flat over the survivors
    c.top_k = 3;
    Sampler s(c);
    auto logits = test_logits();
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) seen.insert(s.sample(logits.data(), int32_t(logits.size()), {}));
    EXPECT_EQ(seen, (std::set<int32_t>{1, 3, 7}));
}

TEST(Sampler, TinyTopPEqualsGreedy) {
    SamplerConfig c = plain_config(2.0f);
    c.top_p = 1e-6f;
    Sampler s(c);
    auto logits = test_logits();
    for (int i = 0; i < 200; ++i) EXPECT_EQ(s.sample(logits.data(), int32_t(logits.size()), {}), 1);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingTheMass) {
    // Probabilities 0.5, 0.3, 0.2 (as logits): top_p 0.7 keeps {0, 1}.
    std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    SamplerConfig c = plain_config(1.0f);
    c.top_p = 0.7f;
    Sampler s(c);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) seen.insert(s.sample(logits.data(), 3, {}));
    EXPECT_EQ(seen, (std::set<int32_t>{0, 1}));
}

TEST(Sampler, TopPOverALargeVocabMatchesAFullSort) {
    // Flat-ish logits, so the kept prefix is far longer than the first block
    // the sampler orders (256): the lazy ordering must extend it correctly.
    const int32_t n = 3000;
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> logits(static_cast<size_t>(n));
    for (float& l : logits) l = normal(rng);
    std::vector<int32_t> order(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) order[size_t(i)] = i;
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    });
    double total = 0.0;
    for (float l : logits) total += std::exp(double(l));
    std::set<int32_t> kept;
    double cum = 0.0;
    for (int32_t id : order) {
        kept.insert(id);
        cum += std::exp(double(logits[size_t(id)])) / total;
        if (cum >= 0.9) break;
    }
    ASSERT_GT(kept.size(), 1000u);

    SamplerConfig c = plain_config(1.0f);
    c.top_p = 0.9f;
    Sampler s(c);
    std::set<int32_t> top_block(order.begin(), order.begin() + 256);
    int beyond_first_block = 0;
    for (int i = 0; i < 3000; ++i) {
        int32_t id = s.sample(logits.data(), n, {});
        ASSERT_TRUE(kept.count(id)) << id;
        beyond_first_block += top_block.count(id) == 0;
    }
    EXPECT_GT(beyond_first_block, 1000);
}

TEST(Sampler, MinPFiltersUnlikelyTokens) {
    // p = {0.6, 0.3, 0.08, 0.02}: min_p 0.1 needs p >= 0.06, so id 3 goes.
    std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.08f), std::log(0.02f)};
    SamplerConfig c = plain_config(1.0f);
    c.min_p = 0.1f;
    Sampler s(c);
    std::set<int32_t> seen;
    for (int i = 0; i < 5000; ++i) seen.insert(s.sample(logits.data(), 4, {}));
    EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2}));

    c.min_p = 0.4f;  // needs p >= 0.24
    Sampler strict(c);
    seen.clear();
    for (int i = 0; i < 5000; ++i) seen.insert(strict.sample(logits.data(), 4, {}));
    EXPECT_EQ(seen, (std::set<int32_t>{0, 1}));
}

TEST(Sampler, RepetitionPenaltyDemotesRepeatedTokens) {
    SamplerConfig c = plain_config(0.0f);
    c.repeat_penalty = 1.5f;
    c.repeat_last_n = 4;
    Sampler s(c);
    std::vector<float> logits = {2.0f, 1.8f, -0.5f, -0.6f};
    EXPECT_EQ(s.sample(logits.data(), 4, {}), 0);
    // 2.0 / 1.5 = 1.33 < 1.8: id 1 wins once id 0 is in the window.
    EXPECT_EQ(s.sample(logits.data(), 4, {0}), 1);
    // Repeats count once, not per occurrence: 2.0 / 1.5 vs 1.8 / 1.5.
    EXPECT_EQ(s.sample(logits.data(), 4, {0, 1, 0, 0}), 0);
    // Outside the last 4 ids the penalty no longer applies.
    EXPECT_EQ(s.sample(logits.data(), 4, {0, 2, 2, 2, 2}), 0);
    // Negative logits are multiplied: -0.5 * 1.5 = -0.75 < -0.6.
    std::vector<float> neg = {-0.5f, -0.6f};
    EXPECT_EQ(s.sample(neg.data(), 2, {0}), 1);

    c.repeat_last_n = -1;  // the whole history
    Sampler whole(c);
    EXPECT_EQ(whole.sample(logits.data(), 4, {0, 2, 2, 2, 2}), 1);
    c.repeat_last_n = 0;  // disabled
    Sampler off(c);
    EXPECT_EQ(off.sample(logits.data(), 4, {0}), 0);
}

TEST(Sampler, RepetitionPenaltyLowersAFrequency) {
    std::vector<float> logits = {1.0f, 1.0f};
    SamplerConfig c = plain_config(1.0f);
    c.repeat_penalty = 2.0f;
    Sampler s(c);
    int zeros = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) zeros += s.sample(logits.data(), 2, {0, 0, 0}) == 0;
    // p(0) = e^0.5 / (e^0.5 + e^1) ~= 0.378 instead of 0.5.
    EXPECT_NEAR(double(zeros) / n, 1.0 / (1.0 + std::exp(0.5)), 0.03);
}

TEST(Sampler, ExcludedIdsAreNeverSampled) {
    SamplerConfig c = plain_config(5.0f);
    Sampler s(c);
    s.set_excluded({1, 3});
    EXPECT_EQ(s.excluded(), (std::vector<int32_t>{1, 3}));
    auto logits = test_logits();
    for (int i = 0; i < 2000; ++i) {
        int32_t id = s.sample(logits.data(), int32_t(logits.size()), {});
        EXPECT_NE(id, 1);
        EXPECT_NE(id, 3);
    }
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
    std::vector<float> logits = {1.0f, 2.0f, 0.5f};
    double z = 0.0;
    std::array<double, 3> p{};
    for (size_t i = 0; i < 3; ++i) z += p[i] = std::exp(double(logits[i]));
    for (double& v : p) v /= z;

    Sampler s(plain_config(1.0f));
    std::array<int, 3> counts{};
    const int n = 20000;
    for (int i = 0; i < n; ++i) ++counts[size_t(s.sample(logits.data(), 3, {}))];
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(double(counts[i]) / n, p[i], freq_tolerance) << "id " << i;
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
    std::vector<float> logits = {1.0f, 2.0f};
    Sampler s(plain_config(0.5f));
    int ones = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ones += s.sample(logits.data(), 2, {}) == 1;
    // Logits / 0.5 = {2, 4}: p(1) = 1 / (1 + e^-2).
    EXPECT_NEAR(double(ones) / n, 1.0 / (1.0 + std::exp(-2.0)), freq_tolerance);
}

TEST(Sampler, DefaultChainOnlyReturnsPlausibleTokens) {
    SamplerConfig c;  // llama.cpp-like defaults
    c.seed = test_seed;
    Sampler s(c);
    std::vector<float> logits(1000, -5.0f);
    logits[10] = 8.0f;
    logits[500] = 7.5f;
    logits[999] = 7.0f;
    for (int i = 0; i < 500; ++i) {
        int32_t id = s.sample(logits.data(), 1000, {});
        EXPECT_TRUE(id == 10 || id == 500 || id == 999) << id;
    }
}

TEST(Sampler, InfiniteLogitWins) {
    Sampler s(plain_config(1.0f));
    std::vector<float> logits = {1.0f, std::numeric_limits<float>::infinity(), 2.0f};
    for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(logits.data(), 3, {}), 1);
}

TEST(Sampler, RejectsBadInput) {
    Sampler s(plain_config(1.0f));
    std::vector<float> logits = {1.0f, 2.0f};
    EXPECT_THROW(s.sample(nullptr, 2, {}), std::invalid_argument);
    EXPECT_THROW(s.sample(logits.data(), 0, {}), std::invalid_argument);
    s.set_excluded({0, 1});
    EXPECT_THROW(s.sample(logits.data(), 2, {}), std::invalid_argument);
    Sampler g(plain_config(0.0f));
    g.set_excluded({0, 1});
    EXPECT_THROW(g.sample(logits.data(), 2, {}), std::invalid_argument);
}

TEST(Sampler, RejectsBadConfig) {
    auto make = [](auto edit) {
        SamplerConfig c = plain_config(1.0f);
        edit(c);
        return Sampler(c);
    };
    EXPECT_THROW(make([](SamplerConfig& c) { c.top_p = 1.5f; }), std::invalid_argument);
    EXPECT_THROW(make([](SamplerConfig& c) { c.min_p = -0.1f; }), std::invalid_argument);
    EXPECT_THROW(make([](SamplerConfig& c) { c.repeat_penalty = 0.0f; }), std::invalid_argument);
    EXPECT_THROW(make([](SamplerConfig& c) { c.repeat_last_n = -2; }), std::invalid_argument);
    EXPECT_THROW(make([](SamplerConfig& c) { c.temp = std::nanf(""); }), std::invalid_argument);
}

}  // namespace
}  // namespace llmn::engine
