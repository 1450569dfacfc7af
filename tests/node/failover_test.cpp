// Failover: a hop killed with SIGKILL in the middle of a generation; the client
// reroutes around it, replays the tokens so far, and finishes with the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "client/resilient_session.h"
#include "engine/local_session.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;

int32_t argmax(const std::vector<float>& v) { return int32_t(std::max_element(v.begin(), v.end()) - v.begin()); }

TEST(RoutePlanner, PicksTheCheapestCoveringChainAndSkipsBannedNodes) {
    std::vector<Candidate> c = {
        {"a", 0, 4, 0.01, 0.001, 1}, {"b", 4, 8, 0.01, 0.001, 1}, {"c", 0, 8, 0.05, 0.001, 1}, {"d", 2, 8, 0.001, 0.001, 1}};
    EXPECT_EQ(plan_route(c, 8), (std::vector<std::string>{"a", "d"}));  // d runs only 4:8, cheaply
    EXPECT_EQ(plan_route(c, 8, {"d"}), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(plan_route(c, 8, {"d", "b"}), (std::vector<std::string>{"a", "c"}));  // c runs only 4:8
    EXPECT_EQ(plan_route(c, 8, {"a", "b", "d"}), (std::vector<std::string>{"c"}));
    EXPECT_TRUE(plan_route(c, 8, {"a", "c"}).empty());  // nothing covers layers 0..1
}

TEST(RoutePlanner, PrefersNodesWithFreeSessionSlots) {
    std::vector<Candidate> c = {{"busy", 0, 4, 0.001, 0.001, 0}, {"free", 0, 4, 0.002, 0.001, 3}};
    EXPECT_EQ(plan_route(c, 4), (std::vector<std::string>{"free"}));
}

TEST(Failover, KillingAHopMidGenerationKeepsTheTokensIdentical) {
    testing::RandomModelSpec spec;
    spec.arch = "llama";
    spec.n_layer = 6;
    spec.weight_type = tensor::DType::q8_0;
    const std::string model = testing::write_random_model(spec, testing::temp_path("failover.gguf"));
    const std::vector<int32_t> prompt = {1, 77, 12, 250};
    constexpr int kTokens = 64, kKillAt = 20;

    std::vector<int32_t> want;
    {
        tensor::ThreadPool pool(1);
        engine::SessionConfig sc;
        sc.n_ctx = 128;
        engine::LocalSession s(engine::Model::load(model), sc, pool);
        std::vector<float> logits;
        s.eval(prompt, logits);
        for (int i = 0; i < kTokens; ++i) {
            want.push_back(argmax(logits));
            if (i + 1 < kTokens) s.eval({want.back()}, logits);
        }
    }

    NodeProcess a(model, "0:2"), b1(model, "2:4"), b2(model, "2:4"), c(model, "4:6");
    std::vector<std::string> addrs = {a.address(), b1.address(), b2.address(), c.address()};
    tensor::ThreadPool pool(1);
    ResilientConfig rc;
    rc.remote.n_ctx = 128;
    rc.remote.wire_f32 = true;  // exact comparison with the single process
    ResilientSession s(engine::Model::load(model), [&] { return addrs; }, rc, pool);
    ASSERT_EQ(s.route().size(), 3u);
    NodeProcess* middle = s.route()[1] == b1.address() ? &b1 : &b2;

    std::vector<int32_t> got;
    std::vector<float> logits;
    s.eval(prompt, logits);
    double stall = 0;
    for (int i = 0; i < kTokens; ++i) {
        got.push_back(argmax(logits));
        if (i == kKillAt) middle->kill_now();
        if (i + 1 < kTokens) {
            const auto t0 = std::chrono::steady_clock::now();
            s.eval({got.back()}, logits);
            stall = std::max(stall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(s.failovers(), 1);
    EXPECT_NE(s.route()[1], middle->address());
    std::printf("failover: longest step %.3f s, recovery (reroute + replay) %.3f s\n", stall, s.last_recovery_seconds());
    EXPECT_LT(stall, 2.0);
}

}  // namespace
}  // namespace llmn::client
