// Onion circuits through real `llm-node serve` processes on 127.0.0.1, with a
// TCP tap in front of every node: the ring client -> entry relay -> 3 spans ->
// exit relay -> client gives the single-process tokens (llama, qwen2, phi3);
// each node names only its two neighbours; only the relays meet the client;
// no link carries the prompt, its ids or its embeddings, and the client's own
// links look random.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "client/circuit_session.h"
#include "client/resilient_session.h"
#include "../cli/run_process.h"
#include "engine/local_session.h"
#include "engine/stages.h"
#include "net/identity.h"
#include "net/probe.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "support/tcp_tap.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;
using testing::greedy;
using testing::TcpTap;

double entropy_bits_per_byte(const std::string& s) {
    double count[256] = {};
    for (unsigned char c : s) ++count[c];
    double h = 0;
    for (double c : count)
        if (c > 0) h -= c / double(s.size()) * std::log2(c / double(s.size()));
    return h;
}

// A node behind its tap; the circuit only ever uses the tap's address.
struct TappedNode {
    TappedNode(const std::string& model, const std::string& span) : node(model, span), tap(node.address()) {}
    std::string id12() const { return net::to_hex(net::probe_nodes({node.address()}, std::chrono::milliseconds(2000)).at(0).identity.data(), 6); }
    NodeProcess node;
    TcpTap tap;
};

std::string circuit_line(const std::string& log) {
    const auto p = log.find("circuit ");
    return p == std::string::npos ? "" : log.substr(p, log.find('\n', p) - p);
}

class Circuit : public ::testing::TestWithParam<std::string> {};

TEST_P(Circuit, RingThroughTwoRelaysGivesTheSingleProcessTokensAndHidesTheClient) {
    setenv("LLM_NODE_CIRCUIT_LOG", "1", 1);
    testing::RandomModelSpec spec;
    spec.arch = GetParam();
    spec.n_layer = 6;
    const std::string model = testing::write_random_model(spec, testing::temp_path("circuit-" + spec.arch + ".gguf"));
    std::vector<std::unique_ptr<TappedNode>> nodes;  // entry relay, spans 0:2 2:4 4:6, exit relay
    for (const char* span : {"0:6", "0:2", "2:4", "4:6", "0:6"}) nodes.push_back(std::make_unique<TappedNode>(model, span));
    CircuitPlan plan;
    plan.entry_relay = nodes[0]->tap.address();
    for (int i = 1; i <= 3; ++i) plan.spans.push_back(nodes[size_t(i)]->tap.address());
    plan.exit_relay = nodes[4]->tap.address();

    const std::vector<int32_t> prompt = {1, 72, 101, 108, 108, 111, 44, 32, 119};
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.wire_f32 = true;
    tensor::ThreadPool pool(1);
    std::vector<int32_t> remote;
    std::string client, exit_client;
    {
        CircuitSession s(engine::Model::load(model), plan, rc, pool);
        client = s.client_id().substr(0, 12);
        exit_client = s.exit_client_id().substr(0, 12);
        EXPECT_NE(client, exit_client) << "entry and exit links must carry different client keys";
        remote = greedy(s, prompt, 10);
    }
    engine::SessionConfig sc;
    sc.n_ctx = 64;
    engine::LocalSession local(engine::Model::load(model), sc, pool);
    EXPECT_EQ(remote, greedy(local, prompt, 10));

    // What each node saw: its two neighbours, nothing else.
    std::vector<std::string> ids;
    for (auto& n : nodes) ids.push_back(n->id12());
    for (size_t i = 0; i < nodes.size(); ++i) {
        const std::string line = circuit_line(nodes[i]->node.log());
        ASSERT_FALSE(line.empty()) << "node " << i << " logged no circuit: " << nodes[i]->node.log();
        const std::string prev = i == 0 ? client : ids[i - 1];
        const std::string next = i + 1 == nodes.size() ? "client " + exit_client : ids[i + 1];
        EXPECT_NE(line.find("prev " + prev), std::string::npos) << line;
        EXPECT_NE(line.find("next " + next), std::string::npos) << line;
        if (i != 0 && i + 1 != nodes.size()) {
            EXPECT_EQ(line.find(client), std::string::npos) << "span node " << i << " met the client: " << line;
            EXPECT_EQ(line.find(exit_client), std::string::npos) << "span node " << i << " met the client: " << line;
        }
    }
    // The relays forwarded cells they could not read (the node logs what a relay could decode).
    for (size_t i : {size_t(0), nodes.size() - 1}) {
        EXPECT_NE(nodes[i]->node.log().find("relay forwards a sealed cell"), std::string::npos) << nodes[i]->node.log();
        EXPECT_EQ(nodes[i]->node.log().find("plaintext"), std::string::npos) << nodes[i]->node.log();
    }
    // Only the relays' taps saw the client connect; spans got one link each (their previous hop) besides probes.
    // No link carries the prompt's ids or the first token's embedding; the client's links look random.
    auto m = engine::Model::load(model);
    std::string ids_bytes(reinterpret_cast<const char*>(prompt.data() + 1), 4 * 4);
    std::vector<float> emb(size_t(m->config().n_embd));
    engine::EmbeddingStage(m).embed(prompt.data() + 1, 1, emb.data());
    const std::string emb_bytes(reinterpret_cast<const char*>(emb.data()), 16);
    for (size_t i = 0; i < nodes.size(); ++i)
        for (const auto& st : nodes[i]->tap.streams()) {
            for (const std::string* dir : {&st.to_target, &st.from_target}) {
                EXPECT_EQ(dir->find(ids_bytes), std::string::npos) << "token ids on the wire to node " << i;
                EXPECT_EQ(dir->find(emb_bytes), std::string::npos) << "an embedding on the wire to node " << i;
            }
        }
    for (size_t i : {size_t(0), nodes.size() - 1}) {
        size_t checked = 0;
        for (const auto& st : nodes[i]->tap.streams())
            for (const std::string* dir : {&st.to_target, &st.from_target})
                if (dir->size() > 4096) {
                    const double h = entropy_bits_per_byte(dir->substr(256));  // past the plaintext HELLOs
                    EXPECT_GT(h, 7.9) << "relay " << i << ": " << h << " bits per byte over " << dir->size() << " bytes";
                    ++checked;
                }
        EXPECT_GT(checked, 0u) << "no traffic captured at relay " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Archs, Circuit, ::testing::Values("llama", "qwen2", "phi3"));

// --local-layers 2 through a circuit: the first remote span starts at layer 2.
TEST(CircuitLocalLayers, FirstRemoteSpanStartsAfterTheClientsLayers) {
    setenv("LLM_NODE_CIRCUIT_LOG", "1", 1);
    testing::RandomModelSpec spec;
    spec.n_layer = 6;
    const std::string model = testing::write_random_model(spec, testing::temp_path("circuit-local.gguf"));
    NodeProcess relay_in(model, "0:6"), a(model, "2:4"), b(model, "4:6"), relay_out(model, "0:6");
    CircuitPlan plan{{a.address(), b.address()}, relay_in.address(), relay_out.address()};
    RemoteConfig rc;
    rc.n_ctx = 64;
    rc.wire_f32 = true;
    rc.local_layers = 2;
    tensor::ThreadPool pool(1);
    const std::vector<int32_t> prompt = {1, 40, 50, 60};
    std::vector<int32_t> remote;
    {
        CircuitSession s(engine::Model::load(model), plan, rc, pool);
        remote = greedy(s, prompt, 8);
    }
    engine::SessionConfig sc;
    sc.n_ctx = 64;
    engine::LocalSession local(engine::Model::load(model), sc, pool);
    EXPECT_EQ(remote, greedy(local, prompt, 8));
    EXPECT_NE(circuit_line(a.log()).find("span 2:4"), std::string::npos) << a.log();
}

// Over candidate nodes with --relays 1: relay-only nodes carry the circuit,
// and when the span node in use dies mid-generation a new circuit is built
// around it and the tokens stay those of the single process.
TEST(CircuitFailover, AKilledSpanNodeIsReplacedAndTheTokensStayIdentical) {
    testing::RandomModelSpec spec;
    spec.n_layer = 6;
    const std::string model = testing::write_random_model(spec, testing::temp_path("circuit-failover.gguf"));
    NodeProcess r1(NodeProcess::with({"serve", "-m", model, "--relay-only", "--listen", "127.0.0.1:0"}, {}));
    NodeProcess r2(NodeProcess::with({"serve", "-m", model, "--relay-only", "--listen", "127.0.0.1:0"}, {}));
    std::vector<std::unique_ptr<NodeProcess>> spans;
    // Two of each span: the node the client asks about the swarm (any of them) never serves it as a span.
    for (const char* span : {"0:3", "0:3", "3:6", "3:6", "3:6"}) spans.push_back(std::make_unique<NodeProcess>(model, span));
    std::vector<std::string> all = {r1.address(), r2.address()};
    for (auto& n : spans) all.push_back(n->address());
    ResilientConfig fc;
    fc.remote.n_ctx = 64;
    fc.remote.wire_f32 = true;
    fc.entry_relays = fc.exit_relays = 1;
    tensor::ThreadPool pool(1);
    ResilientSession s(engine::Model::load(model), [all] { return all; }, fc, pool);
    const std::vector<int32_t> prompt = {1, 30, 31, 32};
    std::vector<float> logits;
    s.eval(prompt, logits);
    std::vector<int32_t> remote;
    for (int i = 0; i < 20; ++i) {
        remote.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        if (i == 8)  // kill the second span node of the current route
            for (auto& n : spans)
                if (n->address() == s.route().back()) n->kill_now();
        if (i + 1 < 20) s.eval({remote.back()}, logits);
    }
    EXPECT_EQ(s.failovers(), 1);
    engine::SessionConfig sc;
    sc.n_ctx = 64;
    engine::LocalSession local(engine::Model::load(model), sc, pool);
    EXPECT_EQ(remote, greedy(local, prompt, 20));
    // Relay-only nodes were the relays: they serve no layers.
    const auto probed = net::probe_nodes({r1.address()}, std::chrono::milliseconds(2000));
    ASSERT_EQ(probed.size(), 1u);
    EXPECT_EQ(probed[0].info.span_end, 0u);
}

}  // namespace
}  // namespace llmn::client
