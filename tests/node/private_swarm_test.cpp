// Private swarms with real processes on 127.0.0.1: nodes serving with
// --swarm-key answer only clients (and nodes) that hold the same key, and a
// swarm announced with a key cannot be found on the DHT without it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "../cli/run_process.h"
#include "support/node_process.h"
#include "support/random_model.h"

namespace llmn::node {
namespace {

using testing::NodeProcess;

std::string make_model(const std::string& name) {
    testing::RandomModelSpec spec;
    spec.arch = "llama";
    spec.n_layer = 6;
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    return testing::write_random_model(spec, testing::temp_path(name));
}

// A key file: 32 raw bytes, or the same as hex with a newline.
std::string write_key(const std::string& name, uint8_t seed, bool hex) {
    std::string raw(32, '\0');
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = char(seed * 41 + 7 * i + 1);
    std::string content = raw;
    if (hex) {
        content.clear();
        const char* digits = "0123456789abcdef";
        for (unsigned char c : raw) content += std::string{digits[c >> 4], digits[c & 15]};
        content += "\n";
    }
    const std::string path = testing::temp_path(name);
    std::ofstream(path, std::ios::binary) << content;
    return path;
}

// The token ids of `generate --json`, as one string.
std::string ids(const std::string& out) {
    std::string s;
    for (size_t p = out.find("{\"id\":"); p != std::string::npos; p = out.find("{\"id\":", p + 1))
        s += out.substr(p + 6, out.find(',', p) - p - 6) + " ";
    return s;
}

std::vector<std::string> generate(const std::string& model, std::vector<std::string> extra) {
    std::vector<std::string> cmd = {testing::llm_node_binary(), "generate", "-m", model, "-p", "a private swarm", "-n", "10",
                                    "--temp", "0", "--json", "-t", "1"};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return cmd;
}

TEST(PrivateSwarm, OnlyAClientWithTheKeyOpensASessionOnKeyedNodes) {
    const std::string model = make_model("private-route.gguf");
    const std::string key = write_key("swarm-a.key", 1, false), same_key_hex = write_key("swarm-a-hex.key", 1, true);
    const std::string other_key = write_key("swarm-b.key", 2, true);
    // Two hops: the first pushes to the second over a link that proves the key too.
    NodeProcess a(model, "0:3", {"--swarm-key", key}), b(model, "3:6", {"--swarm-key", same_key_hex});
    const std::string route = a.address() + "," + b.address();

    const auto local = testing::run_process(generate(model, {}), 60);
    ASSERT_EQ(local.exit_code, 0) << local.describe();
    ASSERT_FALSE(ids(local.out).empty());

    const auto member = testing::run_process(generate(model, {"--route", route, "--wire-dtype", "f32", "--swarm-key", key}), 60);
    ASSERT_EQ(member.exit_code, 0) << member.describe() << "\nnode log: " << a.log();
    EXPECT_EQ(ids(member.out), ids(local.out));

    const auto keyless = testing::run_process(generate(model, {"--route", route}), 60);
    EXPECT_EQ(keyless.exit_code, 1) << keyless.describe();
    EXPECT_NE(keyless.err.find("not_in_swarm"), std::string::npos) << keyless.err;
    EXPECT_NE(keyless.err.find("--swarm-key"), std::string::npos) << keyless.err;
    EXPECT_TRUE(ids(keyless.out).empty()) << keyless.out;

    const auto stranger = testing::run_process(generate(model, {"--route", route, "--swarm-key", other_key}), 60);
    EXPECT_EQ(stranger.exit_code, 1) << stranger.describe();
    EXPECT_NE(stranger.err.find("another swarm key"), std::string::npos) << stranger.err;
    EXPECT_TRUE(ids(stranger.out).empty()) << stranger.out;

    // A node outside the swarm cannot be a hop of it: the keyed client refuses it.
    NodeProcess outsider(model, "3:6");
    const auto mixed = testing::run_process(generate(model, {"--route", a.address() + "," + outsider.address(), "--swarm-key", key}), 60);
    EXPECT_EQ(mixed.exit_code, 1) << mixed.describe();
    EXPECT_NE(mixed.err.find("the peer has no swarm key"), std::string::npos) << mixed.err;
    EXPECT_TRUE(a.alive() && b.alive());
}

TEST(PrivateSwarm, ABadKeyFileIsAClearError) {
    const std::string model = make_model("private-badkey.gguf");
    const std::string bad = testing::temp_path("bad.key");
    std::ofstream(bad) << "not a key\n";
    const auto r = testing::run_process({testing::llm_node_binary(), "serve", "-m", model, "--listen", "127.0.0.1:0", "--swarm-key", bad}, 60);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("head -c 32 /dev/urandom"), std::string::npos) << r.err;
}

// Flags that keep every packet on this machine (as in swarm_test.cpp).
std::vector<std::string> local_dht(const std::string& listen, const std::string& bootstrap) {
    std::vector<std::string> f = {"--no-lan", "--no-upnp", "--one-machine", "--dht-listen", listen};
    if (bootstrap.empty()) f.push_back("--standalone");
    else f.insert(f.end(), {"--bootstrap", bootstrap});
    return f;
}

TEST(PrivateSwarm, TheSwarmIsFoundOnTheDhtOnlyWithItsKey) {
    const std::string model = make_model("private-dht.gguf");
    const std::string key = write_key("swarm-dht.key", 3, false), other_key = write_key("swarm-dht-other.key", 4, false);
    const std::string seed_dht = "127.0.0.1:" + std::to_string(21000 + getpid() % 20000);
    auto start = [&](const std::string& dht_listen, const std::string& bootstrap, const std::string& key_file) {
        std::vector<std::string> cmd = {"start", model, "--listen", "127.0.0.1:0", "-t", "1", "--recheck", "2", "--max-memory", "512"};
        for (const auto& f : local_dht(dht_listen, bootstrap)) cmd.push_back(f);
        if (!key_file.empty()) cmd.insert(cmd.end(), {"--swarm-key", key_file});
        return std::make_unique<NodeProcess>(cmd);
    };
    // The seed's own announce is stored by the nodes around it, so the node
    // that joins through it is the one the others can find.
    auto seed = start(seed_dht, "", key);
    auto member = start("127.0.0.1:0", seed_dht, key);
    // A keyless node on the same DHT, logging every lookup of its re-checks.
    setenv("LLM_NODE_SWARM_DEBUG", "1", 1);
    auto outsider = start("127.0.0.1:0", seed_dht, "");
    unsetenv("LLM_NODE_SWARM_DEBUG");

    auto swarm_listing = [&](const std::string& key_file) {
        std::vector<std::string> cmd = {testing::llm_node_binary(), "swarm", "-m", model, "--json", "--timeout", "2"};
        for (const auto& f : local_dht("127.0.0.1:0", seed_dht)) cmd.push_back(f);
        if (!key_file.empty()) cmd.insert(cmd.end(), {"--swarm-key", key_file});
        return testing::run_process(cmd, 60);
    };
    // With the key, `llm-node swarm` finds the member (bounded retries while the announce spreads).
    testing::ProcessResult with_key;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(40)) {
        with_key = swarm_listing(key);
        if (with_key.out.find(member->address()) != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ASSERT_NE(with_key.out.find(member->address()), std::string::npos) << with_key.describe() << "\nmember log: " << member->log();

    // The DHT holds the announce now; without the key, or with another, nothing of it is found.
    for (const std::string& k : {std::string(), other_key}) {
        const auto r = swarm_listing(k);
        EXPECT_EQ(r.out.find(member->address()), std::string::npos) << r.describe();
        EXPECT_EQ(r.out.find(seed->address()), std::string::npos) << r.describe();
    }
    // The keyless node has re-checked its own (public) swarm a few times and
    // never saw a node of the private one.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const std::string log = outsider->log();
    EXPECT_NE(log.find("re-check:"), std::string::npos) << log;
    EXPECT_EQ(log.find(member->address()), std::string::npos) << log;
    EXPECT_EQ(log.find(seed->address()), std::string::npos) << log;
}

}  // namespace
}  // namespace llmn::node
