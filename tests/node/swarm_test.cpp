// Nodes that join with no span given: they find each other on the DHT (one
// bootstrap on 127.0.0.1), cover every layer between them, a node with less
// memory serves fewer layers, and a client that knows only the bootstrap
// address generates the single-process output.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <map>
#include <optional>
#include <thread>

#include "../cli/run_process.h"
#include "engine/model.h"
#include "net/identity.h"
#include "net/probe.h"
#include "support/node_process.h"
#include "support/random_model.h"

namespace llmn::node {
namespace {

using testing::NodeProcess;

// Flags that keep every packet on this machine (DEPENDENCIES.md).
std::vector<std::string> local_dht(const std::string& bootstrap) {
    std::vector<std::string> f = {"--no-lan", "--no-upnp", "--one-machine", "--dht-listen", "127.0.0.1:0"};
    if (bootstrap.empty()) f.push_back("--standalone");
    else f.insert(f.end(), {"--bootstrap", bootstrap});
    return f;
}

int free_udp_port() {
    static int next = 20000 + int(getpid() % 20000);
    return next++;
}

struct SwarmFixture {
    std::string model;
    uint64_t layer_mib = 0;
    std::string seed_dht = "127.0.0.1:" + std::to_string(free_udp_port());

    explicit SwarmFixture(const std::string& name) {
        testing::RandomModelSpec spec;
        spec.arch = "llama";
        spec.n_layer = 6;
        spec.n_embd = 256;
        spec.n_ff = 512;
        spec.n_head = 4;
        spec.n_head_kv = 2;
        model = testing::write_random_model(spec, testing::temp_path(name));
        layer_mib = (engine::Model::load(model)->span_weight_bytes(0, 6) / 6) >> 20;
    }
    // Memory budget for about n layers (64 MiB reserve + KV and rounding).
    int budget_for(int n) const { return 64 + int(layer_mib + 2) * n + 2; }

    // `llm-node start` with no span; the first node (no bootstrap) is the seed.
    std::unique_ptr<NodeProcess> start(bool seed, int max_mib, const std::string& layers = "") const {
        std::vector<std::string> cmd = {"start", model, "--listen", "127.0.0.1:0", "-t", "1", "--recheck", "2",
                                        "--max-memory", std::to_string(max_mib)};
        if (!layers.empty()) cmd.insert(cmd.end(), {"--layers", layers});
        auto f = local_dht(seed ? "" : seed_dht);
        cmd.insert(cmd.end(), f.begin(), f.end());
        if (seed)
            for (size_t i = 0; i + 1 < cmd.size(); ++i)
                if (cmd[i] == "--dht-listen") cmd[i + 1] = seed_dht;
        return std::make_unique<NodeProcess>(cmd);
    }
};

// Probes the nodes until their spans cover all 6 layers (bounded); returns
// what the last probe saw, or nothing if coverage did not happen in time.
std::optional<std::vector<net::ProbedNode>> wait_for_coverage(const std::vector<std::string>& addrs, std::chrono::seconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto seen = net::probe_nodes(addrs, std::chrono::milliseconds(1000));
        std::vector<int> cov(6, 0);
        for (const auto& p : seen)
            for (uint32_t l = p.info.span_start; l < p.info.span_end && l < 6; ++l) ++cov[l];
        if (seen.size() == addrs.size() && std::count(cov.begin(), cov.end(), 0) == 0) return seen;
    }
    return std::nullopt;
}

TEST(Swarm, NodesWithNoSpanCoverTheModelAndAClientFindsThemThroughTheBootstrap) {
    SwarmFixture sw("swarm.gguf");
    const std::string& model = sw.model;
    const std::string& seed_dht = sw.seed_dht;
    const auto t0 = std::chrono::steady_clock::now();
    // Budgets: about 3 layers for three nodes, about 1 layer for the small one.
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    nodes.push_back(sw.start(true, sw.budget_for(3)));
    nodes.push_back(sw.start(false, sw.budget_for(3)));
    nodes.push_back(sw.start(false, sw.budget_for(3)));
    nodes.push_back(sw.start(false, sw.budget_for(1)));

    std::vector<std::string> addrs;
    for (auto& n : nodes) addrs.push_back(n->address());
    const auto seen = wait_for_coverage(addrs, std::chrono::seconds(30));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(seen) << "layers not covered within 30 s; node log: " << nodes[1]->log();
    std::printf("swarm: 4 nodes covered all 6 layers in %.1f s\n", secs);
    std::map<std::string, int> len;
    for (const auto& p : *seen) len[p.address] = int(p.info.span_end - p.info.span_start);
    EXPECT_LT(len[nodes[3]->address()], len[nodes[1]->address()]) << "the small node should serve fewer layers";

    // A client that knows only the bootstrap address.
    std::vector<std::string> gen = {testing::llm_node_binary(), "generate", "-m", model, "-p", "the swarm", "-n", "12",
                                    "--temp", "0", "--json", "--wire-dtype", "f32", "--swarm"};
    auto f = local_dht(seed_dht);
    gen.insert(gen.end(), f.begin(), f.end());
    // Coverage is seen by probing; the announces may still be spreading through the DHT
    // (slow under load or sanitizers), so a lookup that finds nobody is retried, bounded.
    auto remote = testing::run_process(gen, 60);
    for (const auto r0 = std::chrono::steady_clock::now();
         remote.exit_code != 0 && remote.err.find("0 nodes found") != std::string::npos &&
         std::chrono::steady_clock::now() - r0 < std::chrono::seconds(30);)
        remote = testing::run_process(gen, 60);
    const auto local = testing::run_process({testing::llm_node_binary(), "generate", "-m", model, "-p", "the swarm", "-n", "12",
                                             "--temp", "0", "--json"}, 60);
    ASSERT_EQ(remote.exit_code, 0) << remote.describe();
    ASSERT_EQ(local.exit_code, 0) << local.describe();
    auto ids = [](const std::string& out) {
        std::string s;
        for (size_t p = out.find("{\"id\":"); p != std::string::npos; p = out.find("{\"id\":", p + 1))
            s += out.substr(p + 6, out.find(',', p) - p - 6) + " ";
        return s;
    };
    EXPECT_EQ(ids(remote.out), ids(local.out));
    EXPECT_FALSE(ids(local.out).empty());

}

// Three nodes that fit 3 of the 6 layers each: two halves are covered, one of
// them twice. When the only node of a half leaves, a node of the doubled half
// moves over at its next re-check.
TEST(Swarm, WhenANodeLeavesTheOthersReCoverItsLayers) {
    SwarmFixture sw("swarm-leave.gguf");
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    nodes.push_back(sw.start(true, sw.budget_for(3)));
    nodes.push_back(sw.start(false, sw.budget_for(3)));
    nodes.push_back(sw.start(false, sw.budget_for(3)));
    std::vector<std::string> addrs;
    for (auto& n : nodes) addrs.push_back(n->address());
    const auto seen = wait_for_coverage(addrs, std::chrono::seconds(30));
    ASSERT_TRUE(seen) << "layers not covered within 30 s; node log: " << nodes[1]->log();

    // A node without which some layer would be uncovered.
    size_t lone = nodes.size();
    for (size_t i = 0; i < nodes.size() && lone == nodes.size(); ++i) {
        std::vector<int> cov(6, 0);
        for (const auto& p : *seen)
            if (p.address != addrs[i])
                for (uint32_t l = p.info.span_start; l < p.info.span_end && l < 6; ++l) ++cov[l];
        if (std::count(cov.begin(), cov.end(), 0) > 0) lone = i;
    }
    ASSERT_LT(lone, nodes.size()) << "expected a layer served by a single node";
    const auto t0 = std::chrono::steady_clock::now();
    nodes[lone]->stop();
    nodes.erase(nodes.begin() + std::ptrdiff_t(lone));
    addrs.erase(addrs.begin() + std::ptrdiff_t(lone));
    const auto after = wait_for_coverage(addrs, std::chrono::seconds(40));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(after) << "the others did not re-cover the layers; logs:\n" << nodes[0]->log() << "\n" << nodes[1]->log();
    std::printf("swarm: layers re-covered %.1f s after a node left\n", secs);
}

// Every layer is covered, 3:6 twice: a node joining with room for 3 (or 4)
// layers takes the weakest window, the one starting at layer 0.
TEST(Swarm, ANodeJoiningAFullyCoveredSwarmTakesTheWeakestSpan) {
    SwarmFixture sw("swarm-join.gguf");
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    nodes.push_back(sw.start(true, sw.budget_for(6), "0:3"));
    nodes.push_back(sw.start(false, sw.budget_for(6), "3:6"));
    nodes.push_back(sw.start(false, sw.budget_for(6), "3:6"));
    std::this_thread::sleep_for(std::chrono::seconds(2));  // let their announces reach the bootstrap
    auto joiner = sw.start(false, sw.budget_for(3));
    const auto seen = net::probe_nodes({joiner->address()}, std::chrono::milliseconds(2000));
    ASSERT_EQ(seen.size(), 1u) << joiner->log();
    EXPECT_EQ(seen[0].info.span_start, 0u) << joiner->log();
    EXPECT_GE(seen[0].info.span_end, 3u) << joiner->log();  // its budget fits 3 or 4 layers
}

// The README's quickstart: `llm-node start MODEL`, then `llm-node chat MODEL`
// finds the node through the DHT and answers as the model does in-process.
TEST(Swarm, ChatFindsAStartedNodeThroughTheDht) {
    SwarmFixture sw("swarm-chat.gguf");
    // The seed's own announce is stored by the DHT nodes around it, so a
    // second node is what a client bootstrapping from the seed finds.
    auto seed = sw.start(true, sw.budget_for(6));
    auto node = sw.start(false, sw.budget_for(6));
    const std::string input = testing::temp_path("chat-input.txt");
    {
        std::FILE* f = std::fopen(input.c_str(), "w");
        std::fputs("Tell me a story.\n/exit\n", f);
        std::fclose(f);
    }
    std::vector<std::string> chat = {testing::llm_node_binary(), "chat", sw.model, "--temp", "0", "-n", "12", "-t", "1"};
    auto swarm_chat = chat;
    swarm_chat.insert(swarm_chat.end(), {"--relays", "0"});  // two nodes: none left over to relay
    auto f = local_dht(sw.seed_dht);
    swarm_chat.insert(swarm_chat.end(), f.begin(), f.end());
    chat.push_back("--local");
    const auto remote = testing::run_process(swarm_chat, 60, input);
    const auto local = testing::run_process(chat, 60, input);
    ASSERT_EQ(remote.exit_code, 0) << remote.describe() << "\nnode log: " << node->log();
    ASSERT_EQ(local.exit_code, 0) << local.describe();
    EXPECT_FALSE(local.out.empty());
    EXPECT_EQ(remote.out, local.out);
}

}  // namespace
}  // namespace llmn::node
