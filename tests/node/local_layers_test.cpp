// --local-layers: the client runs the first layers itself, so the first node
// receives hidden states after them, never the token embeddings. Real
// `llm-node serve` processes on 127.0.0.1; the nodes log what each step brings
// (LLM_NODE_LOG_STEPS=1), which is how the tests see what a span received.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <optional>
#include <regex>

#include "../cli/run_process.h"
#include "client/remote_session.h"
#include "client/resilient_session.h"
#include "engine/layer_span.h"
#include "engine/local_session.h"
#include "engine/stages.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;
using testing::argmax;
using testing::greedy;
using testing::local_greedy;

constexpr int kLayers = 6;

std::string make_model(const std::string& arch) {
    testing::RandomModelSpec spec;
    spec.arch = arch;
    spec.n_layer = kLayers;
    spec.weight_type = tensor::DType::q8_0;
    spec.seed = 11;
    return testing::write_random_model(spec, testing::temp_path("local-layers-" + arch + ".gguf"));
}

// Nodes started while this lives log every step they receive.
struct LogSteps {
    LogSteps() { setenv("LLM_NODE_LOG_STEPS", "1", 1); }
    ~LogSteps() { unsetenv("LLM_NODE_LOG_STEPS"); }
};

// The first logged step at position 0 in a node's stderr.
struct LoggedStep {
    int span_start = -1, span_end = -1, n_tokens = 0;
    std::vector<float> head;  // hidden[0][0:4]
};
std::optional<LoggedStep> first_step(const std::string& log) {
    static const std::regex re(R"(step session [0-9a-f]+ layers (\d+):(\d+) pos 0 n (\d+) hidden\[0\]\[0:4\] (\S+) (\S+) (\S+) (\S+))");
    std::smatch m;
    if (!std::regex_search(log, m, re)) return std::nullopt;
    LoggedStep s;
    s.span_start = std::stoi(m[1]);
    s.span_end = std::stoi(m[2]);
    s.n_tokens = std::stoi(m[3]);
    for (int i = 4; i <= 7; ++i) s.head.push_back(std::stof(m[i]));
    return s;
}

// The first 4 values of row 0 of the prompt's embeddings, and of the hidden
// states after layers [0, n_local), computed here.
std::pair<std::vector<float>, std::vector<float>> reference_heads(const std::string& model, const std::vector<int32_t>& prompt, int n_local) {
    auto m = engine::Model::load(model);
    const int d = int(m->config().n_embd), n = int(prompt.size());
    std::vector<float> hidden(size_t(n) * d);
    engine::EmbeddingStage(m).embed(prompt.data(), n, hidden.data());
    std::vector<float> embd(hidden.begin(), hidden.begin() + 4);
    tensor::ThreadPool pool(1);
    engine::LayerSpan span(m, 0, n_local, 128);
    span.forward(hidden.data(), n, 0, pool);
    return {embd, std::vector<float>(hidden.begin(), hidden.begin() + 4)};
}

class LocalLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(LocalLayers, TwoLocalLayersGiveTheSingleProcessTokensAndTheFirstNodeNeverSeesEmbeddings) {
    const std::string model = make_model(GetParam());
    std::optional<NodeProcess> b, c;
    {
        LogSteps on;
        b.emplace(model, "2:4");
        c.emplace(model, "4:6");
    }
    const std::vector<int32_t> prompt = {1, 260, 17, 42, 99, 5, 281, 7};
    std::vector<float> local_logits, remote_logits;
    const auto want = local_greedy(model, prompt, 16, &local_logits);
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 128;
    rc.wire_f32 = true;  // exact comparison with the single process
    rc.local_layers = 2;
    {
        RemoteSession s(engine::Model::load(model), {b->address(), c->address()}, rc, pool);
        ASSERT_EQ(s.hops().size(), 2u);
        EXPECT_EQ(s.hops()[0].span_start, 2);
        EXPECT_EQ(greedy(s, prompt, 16, &remote_logits), want);
        EXPECT_EQ(remote_logits, local_logits);
    }
    // What the first node received: a session on layers 2:4 whose input is the
    // output of layers 0:2 computed by the client, not the embeddings.
    const auto step = first_step(b->log());
    ASSERT_TRUE(step) << "no step logged by the first node: " << b->log();
    EXPECT_EQ(step->span_start, 2);
    EXPECT_EQ(step->span_end, 4);
    EXPECT_EQ(step->n_tokens, int(prompt.size()));
    const auto [embd, after2] = reference_heads(model, prompt, 2);
    EXPECT_EQ(step->head, after2);
    EXPECT_NE(step->head, embd);
    const auto last = first_step(c->log());
    ASSERT_TRUE(last) << c->log();
    EXPECT_EQ(last->span_start, 4);
}

INSTANTIATE_TEST_SUITE_P(EachFamily, LocalLayers, ::testing::Values("llama", "qwen2", "phi3"));

TEST(LocalLayersControl, WithoutLocalLayersTheFirstNodeReceivesTheEmbeddings) {
    // The same probe without --local-layers sees the embeddings: the check above
    // would notice if the client sent them.
    const std::string model = make_model("llama");
    std::optional<NodeProcess> a, b;
    {
        LogSteps on;
        a.emplace(model, "0:3");
        b.emplace(model, "3:6");
    }
    const std::vector<int32_t> prompt = {1, 77, 12};
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.wire_f32 = true;
    {
        RemoteSession s(engine::Model::load(model), {a->address(), b->address()}, rc, pool);
        std::vector<float> logits;
        s.eval(prompt, logits);
    }
    const auto step = first_step(a->log());
    ASSERT_TRUE(step) << a->log();
    EXPECT_EQ(step->span_start, 0);
    EXPECT_EQ(step->head, reference_heads(model, prompt, 2).first);
}

TEST(LocalLayersErrors, ARouteThatAlsoRunsTheLocalLayersIsRefused) {
    const std::string model = make_model("llama");
    NodeProcess a(model, "0:2"), b(model, "2:4"), c(model, "4:6");
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.local_layers = 2;
    try {
        RemoteSession s(engine::Model::load(model), {a.address(), b.address(), c.address()}, rc, pool);
        FAIL() << "a route covering 0:6 was accepted with 2 local layers";
    } catch (const RemoteError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(a.address()), std::string::npos) << what;
        EXPECT_NE(what.find("does not continue at layer 2"), std::string::npos) << what;
        EXPECT_NE(what.find("--local-layers"), std::string::npos) << what;
    }
    rc.local_layers = kLayers;  // nothing left for the nodes
    EXPECT_THROW(RemoteSession(engine::Model::load(model), {b.address(), c.address()}, rc, pool), std::invalid_argument);
    rc.local_layers = -1;
    EXPECT_THROW(RemoteSession(engine::Model::load(model), {a.address(), b.address(), c.address()}, rc, pool), std::invalid_argument);
    rc.local_layers = 3;  // b would have to start at 3: it serves 2:4, so it runs only 3:4
    RemoteSession trimmed(engine::Model::load(model), {b.address(), c.address()}, rc, pool);
    EXPECT_EQ(trimmed.hops()[0].span_start, 3);
}

TEST(RoutePlanner, PlansFromTheFirstRemoteLayer) {
    std::vector<Candidate> c = {{"a", 0, 2, 0.001, 0.001, 1}, {"b", 2, 4, 0.01, 0.001, 1}, {"c", 4, 6, 0.01, 0.001, 1},
                                {"d", 0, 6, 0.05, 0.001, 1}};
    PlannerConfig pc;
    pc.first_layer = 2;
    EXPECT_EQ(plan_route(c, 6, {}, pc), (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(plan_route(c, 6, {"b"}, pc), (std::vector<std::string>{"d"}));  // d runs only 2:6
    EXPECT_TRUE(plan_route(c, 6, {"b", "d"}, pc).empty());
    pc.first_layer = 6;
    EXPECT_TRUE(plan_route(c, 6, {}, pc).empty());
}

TEST(LocalLayersFailover, KillingTheFirstRemoteHopKeepsTheTokensIdentical) {
    const std::string model = make_model("qwen2");
    const std::vector<int32_t> prompt = {1, 77, 12, 250};
    constexpr int kTokens = 40, kKillAt = 15;
    const auto want = local_greedy(model, prompt, kTokens);

    // a serves the local layers too: the planner must leave it out.
    NodeProcess a(model, "0:2"), b1(model, "2:4"), b2(model, "2:4"), c(model, "4:6");
    std::vector<std::string> addrs = {a.address(), b1.address(), b2.address(), c.address()};
    tensor::ThreadPool pool(1);
    ResilientConfig rc;
    rc.remote.n_ctx = 128;
    rc.remote.wire_f32 = true;
    rc.remote.local_layers = 2;
    ResilientSession s(engine::Model::load(model), [&] { return addrs; }, rc, pool);
    ASSERT_EQ(s.route().size(), 2u);
    NodeProcess* first = s.route()[0] == b1.address() ? &b1 : &b2;
    ASSERT_EQ(s.route()[0], first->address());

    std::vector<int32_t> got;
    std::vector<float> logits;
    s.eval(prompt, logits);
    for (int i = 0; i < kTokens; ++i) {
        got.push_back(argmax(logits));
        if (i == kKillAt) first->kill_now();
        if (i + 1 < kTokens) s.eval({got.back()}, logits);
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(s.failovers(), 1);
    ASSERT_EQ(s.route().size(), 2u);
    EXPECT_NE(s.route()[0], first->address());
    EXPECT_NE(s.route()[0], a.address());
}

// The CLI: generate, chat and api take --local-layers with nodes and refuse it without.
TEST(LocalLayersCli, GenerateThroughNodesWithLocalLayersEqualsTheLocalRun) {
    const std::string model = make_model("llama");
    NodeProcess a(model, "0:2"), b(model, "2:4"), c(model, "4:6");
    const std::string bin = testing::llm_node_binary();
    const std::vector<std::string> base = {bin, "generate", "-m", model, "-p", "local layers", "-n", "12", "--temp", "0", "--json", "-t", "1"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> v = base;
        v.insert(v.end(), extra.begin(), extra.end());
        return testing::run_process(v, 60);
    };
    const auto local = with({});
    const auto remote = with({"--route", b.address() + "," + c.address(), "--local-layers", "2", "--wire-dtype", "f32"});
    ASSERT_EQ(local.exit_code, 0) << local.describe();
    ASSERT_EQ(remote.exit_code, 0) << remote.describe();
    auto ids = [](const std::string& out) {
        std::string s;
        for (size_t p = out.find("{\"id\":"); p != std::string::npos; p = out.find("{\"id\":", p + 1))
            s += out.substr(p + 6, out.find(',', p) - p - 6) + " ";
        return s;
    };
    EXPECT_FALSE(ids(local.out).empty());
    EXPECT_EQ(ids(remote.out), ids(local.out));

    // A route that also covers the local layers: a runtime error naming why.
    const auto overlap = with({"--route", a.address() + "," + b.address() + "," + c.address(), "--local-layers", "2"});
    EXPECT_EQ(overlap.exit_code, 1) << overlap.describe();
    EXPECT_NE(overlap.err.find("--local-layers"), std::string::npos) << overlap.err;
    EXPECT_TRUE(overlap.out.empty()) << overlap.out;

    // Usage errors (exit 2): no nodes to run the rest, or N out of range.
    const std::string route = b.address() + "," + c.address();
    for (const auto& extra : std::vector<std::vector<std::string>>{{"--local-layers", "2"},
                                                                    {"--route", route, "--local-layers", "6"},
                                                                    {"--route", route, "--local-layers", "-1"},
                                                                    {"--route", route, "--local-layers", "two"}}) {
        const auto p = with(extra);
        EXPECT_EQ(p.exit_code, 2) << extra.back() << ": " << p.describe();
        EXPECT_NE(p.err.find("--local-layers"), std::string::npos) << p.err;
    }
    for (const char* cmd : {"chat", "api"}) {
        const auto p = testing::run_process({bin, cmd, "-m", model, "--local", "--local-layers", "1"}, 60);
        EXPECT_EQ(p.exit_code, 2) << cmd << ": " << p.describe();
        EXPECT_NE(p.err.find("--local-layers"), std::string::npos) << cmd << ": " << p.err;
    }
}

}  // namespace
}  // namespace llmn::client
