// Several real `llm-node serve` processes on 127.0.0.1, each holding one span,
// and a client: the distributed run equals the single-process run.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <random>
#include <thread>

#include "client/remote_session.h"
#include "engine/local_session.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;
using testing::greedy;
using testing::local_greedy;

std::string make_model(const std::string& arch, uint64_t seed = 7) {
    testing::RandomModelSpec spec;
    spec.arch = arch;
    spec.n_layer = 6;
    spec.weight_type = tensor::DType::q8_0;
    spec.seed = seed;
    return testing::write_random_model(spec, testing::temp_path("pipe-" + arch + "-" + std::to_string(seed) + ".gguf"));
}

struct ThreeNodes {
    explicit ThreeNodes(const std::string& model)
        : a(model, "0:2"), b(model, "2:4"), c(model, "4:6") {}
    std::vector<std::string> route() const { return {a.address(), b.address(), c.address()}; }
    NodeProcess a, b, c;
};

class Pipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(Pipeline, ThreeNodesGiveTheSingleProcessTokens) {
    const std::string model = make_model(GetParam());
    ThreeNodes nodes(model);
    const std::vector<int32_t> prompt = {1, 260, 17, 42, 99, 5, 281, 7};
    std::vector<float> local_logits, remote_logits;
    const auto want = local_greedy(model, prompt, 16, &local_logits);
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 128;
    rc.wire_f32 = true;  // f32 on the wire: bit-identical to the single process
    {
        RemoteSession s(engine::Model::load(model), nodes.route(), rc, pool);
        EXPECT_EQ(greedy(s, prompt, 16, &remote_logits), want);
        EXPECT_EQ(remote_logits, local_logits);
        ASSERT_EQ(s.hops().size(), 3u);
        EXPECT_EQ(s.hops()[1].span_start, 2);
    }
    rc.wire_f32 = false;  // f16 (the default): same greedy tokens
    RemoteSession s16(engine::Model::load(model), nodes.route(), rc, pool);
    EXPECT_EQ(greedy(s16, prompt, 16), want);
}

INSTANTIATE_TEST_SUITE_P(EachFamily, Pipeline, ::testing::Values("llama", "qwen2", "phi3"));

TEST(PipelineConcurrency, FourConcurrentSessionsEachGetTheSingleProcessOutput) {
    const std::string model = make_model("qwen3");
    ThreeNodes nodes(model);
    std::vector<std::vector<int32_t>> prompts = {{1, 5, 9}, {1, 200, 201, 202, 203}, {1, 280}, {1, 33, 44, 55, 66, 77, 88}};
    std::vector<std::vector<int32_t>> want, got(prompts.size());
    for (const auto& p : prompts) want.push_back(local_greedy(model, p, 12));
    std::vector<std::string> errors(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                tensor::ThreadPool pool(1);
                RemoteConfig rc;
                rc.n_ctx = 64;
                rc.wire_f32 = true;  // exact: random models have near ties that f16 may flip
                RemoteSession s(engine::Model::load(model), nodes.route(), rc, pool);
                got[i] = greedy(s, prompts[i], 12);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(errors[i], "") << "session " << i;
        EXPECT_EQ(got[i], want[i]) << "session " << i;
    }
}

TEST(PipelineErrors, ANodeOfAnotherModelIsRefusedByName) {
    const std::string served = make_model("llama", 1), mine = make_model("llama", 2);
    ThreeNodes nodes(served);
    tensor::ThreadPool pool(1);
    try {
        RemoteSession s(engine::Model::load(mine), nodes.route(), RemoteConfig{}, pool);
        FAIL() << "opened a session on nodes of another model";
    } catch (const RemoteError& e) {
        EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(nodes.a.address()), std::string::npos) << e.what();
    }
}

TEST(PipelineErrors, ARouteWithAGapOrOverlapIsRefused) {
    const std::string model = make_model("llama");
    ThreeNodes nodes(model);
    tensor::ThreadPool pool(1);
    EXPECT_THROW(RemoteSession(engine::Model::load(model), {nodes.a.address(), nodes.c.address()}, RemoteConfig{}, pool), RemoteError);
    EXPECT_THROW(RemoteSession(engine::Model::load(model), {nodes.a.address(), nodes.b.address()}, RemoteConfig{}, pool), RemoteError);
    EXPECT_THROW(RemoteSession(engine::Model::load(model), {nodes.a.address(), nodes.a.address(), nodes.c.address()}, RemoteConfig{}, pool),
                 RemoteError);
}

TEST(Pipeline, OverlappingSpansChainByUsingPartOfANode) {
    const std::string model = make_model("llama");
    NodeProcess a(model, "0:4"), b(model, "2:6");  // overlap on layers 2..3
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.wire_f32 = true;
    RemoteSession s(engine::Model::load(model), {a.address(), b.address()}, rc, pool);
    ASSERT_EQ(s.hops().size(), 2u);
    EXPECT_EQ(s.hops()[1].span_start, 4);  // b runs only 4:6
    EXPECT_EQ(greedy(s, {1, 4, 9, 16}, 8), local_greedy(model, {1, 4, 9, 16}, 8));
}

TEST(PipelineErrors, ADeadHopIsNamedAndTheOtherNodesKeepServing) {
    const std::string model = make_model("llama");
    ThreeNodes nodes(model);
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.step_timeout = std::chrono::milliseconds(10000);
    rc.wire_f32 = true;
    {
        RemoteSession s(engine::Model::load(model), nodes.route(), rc, pool);
        std::vector<float> logits;
        s.eval({1, 2, 3}, logits);
        nodes.b.kill_now();
        try {
            s.eval({4}, logits);
            FAIL() << "a step through a dead hop succeeded";
        } catch (const RemoteError& e) {
            EXPECT_NE(std::string(e.what()).find(nodes.b.address()), std::string::npos) << e.what();
        }
    }
    EXPECT_TRUE(nodes.a.alive());
    EXPECT_TRUE(nodes.c.alive());
    NodeProcess b2(model, "2:4");
    RemoteSession again(engine::Model::load(model), {nodes.a.address(), b2.address(), nodes.c.address()}, rc, pool);
    EXPECT_EQ(greedy(again, {1, 9, 8}, 6), local_greedy(model, {1, 9, 8}, 6));
}

// Raw bytes at a node: garbage, an oversize length prefix, a frame cut off.
void hostile_connection(const std::string& address, const std::vector<uint8_t>& bytes) {
    const auto colon = address.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    (void)!write(fd, bytes.data(), bytes.size());
    close(fd);
}

TEST(PipelineErrors, HostileBytesCostOneLinkNotTheNode) {
    const std::string model = make_model("qwen2");
    ThreeNodes nodes(model);
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 64;
    RemoteSession honest(engine::Model::load(model), nodes.route(), rc, pool);
    std::vector<float> logits;
    honest.eval({1, 2}, logits);
    std::mt19937 rng(3);
    std::vector<uint8_t> garbage(1 << 16);
    for (auto& b : garbage) b = uint8_t(rng());
    hostile_connection(nodes.a.address(), garbage);
    hostile_connection(nodes.b.address(), {0xff, 0xff, 0xff, 0x7f, 1, 2, 3});  // 2 GiB length prefix
    hostile_connection(nodes.c.address(), {40, 0, 0, 0, 1, 0});               // HELLO cut off mid-frame
    const auto want = local_greedy(model, {1, 2, 3, 4, 5}, 1);
    honest.eval({3, 4, 5}, logits);
    EXPECT_EQ(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()), want[0]);
    EXPECT_TRUE(nodes.a.alive() && nodes.b.alive() && nodes.c.alive());
}

}  // namespace
}  // namespace llmn::client
