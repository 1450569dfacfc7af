// Nodes that join with no span given: they find each other on the DHT (one
// bootstrap on 127.0.0.1), cover every layer between them, a node with less
// memory serves fewer layers, and a client that knows only the bootstrap
// address generates the single-process output.
#include <gtest/gtest.h>

#include <chrono>
#include <algorithm>
#include <map>
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

TEST(Swarm, NodesWithNoSpanCoverTheModelAndAClientFindsThemThroughTheBootstrap) {
    testing::RandomModelSpec spec;
    spec.arch = "llama";
    spec.n_layer = 6;
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    const std::string model = testing::write_random_model(spec, testing::temp_path("swarm.gguf"));
    auto m = engine::Model::load(model);
    const uint64_t layer_mib = (m->span_weight_bytes(0, 6) / 6) >> 20;
    const std::string seed_dht = "127.0.0.1:" + std::to_string(free_udp_port());

    auto start = [&](const std::string& dht_listen, const std::string& bootstrap, int max_mib) {
        std::vector<std::string> cmd = {"start", model, "--listen", "127.0.0.1:0", "-t", "1", "--recheck", "2",
                                        "--max-memory", std::to_string(max_mib)};
        auto f = local_dht(bootstrap);
        cmd.insert(cmd.end(), f.begin(), f.end());
        for (size_t i = 0; i + 1 < cmd.size(); ++i)
            if (cmd[i] == "--dht-listen" && !dht_listen.empty()) cmd[i + 1] = dht_listen;
        return std::make_unique<NodeProcess>(cmd);
    };
    const auto t0 = std::chrono::steady_clock::now();
    // Budgets: 64 MiB reserve + about 3 layers for three nodes, about 1 layer for the small one.
    const int big = 64 + int(layer_mib + 2) * 3 + 2, small = 64 + int(layer_mib + 2);
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    nodes.push_back(start(seed_dht, "", big));
    nodes.push_back(start("", seed_dht, big));
    nodes.push_back(start("", seed_dht, big));
    nodes.push_back(start("", seed_dht, small));

    std::vector<std::string> addrs;
    for (auto& n : nodes) addrs.push_back(n->address());
    bool covered = false;
    std::vector<net::ProbedNode> seen;
    while (!covered && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        seen = net::probe_nodes(addrs, std::chrono::milliseconds(1000));
        std::vector<int> cov(6, 0);
        for (const auto& p : seen)
            for (uint32_t l = p.info.span_start; l < p.info.span_end && l < 6; ++l) ++cov[l];
        covered = seen.size() == nodes.size() && std::count(cov.begin(), cov.end(), 0) == 0;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(covered) << "layers not covered within 30 s; node log: " << nodes[1]->log();
    std::printf("swarm: 4 nodes covered all 6 layers in %.1f s\n", secs);
    std::map<std::string, int> len;
    for (const auto& p : seen) len[p.address] = int(p.info.span_end - p.info.span_start);
    EXPECT_LT(len[nodes[3]->address()], len[nodes[1]->address()]) << "the small node should serve fewer layers";

    // A client that knows only the bootstrap address.
    std::vector<std::string> gen = {testing::llm_node_binary(), "generate", "-m", model, "-p", "the swarm", "-n", "12",
                                    "--temp", "0", "--json", "--wire-dtype", "f32", "--swarm"};
    auto f = local_dht(seed_dht);
    gen.insert(gen.end(), f.begin(), f.end());
    const auto remote = testing::run_process(gen, 60);
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

}  // namespace
}  // namespace llmn::node
