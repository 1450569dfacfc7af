// Finding 1 of the security review, round 2: probes must not undo the onion
// circuit. Every node listens on its own 127.0.0.x address (and dials from
// it); the client runs in this process from 127.0.0.1. After circuits are
// built and used, no span node may have accepted a single connection from the
// client's address: the client learns the spans through a node that probes for
// it, and that node serves at most as a relay. Before the fix, every rebuild
// probed every node directly and the circuit probed its members again.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "client/resilient_session.h"
#include "engine/local_session.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;

std::unique_ptr<NodeProcess> node_at(const std::string& model, const std::string& ip, const std::string& span) {
    std::vector<std::string> args = {"serve", "-m", model, "--listen", ip + ":0", "-t", "1"};
    if (span.empty()) args.push_back("--relay-only");
    else args.insert(args.end(), {"--layers", span});
    return std::make_unique<NodeProcess>(NodeProcess::with(args, {}));
}

// "accepted link from IP:port" lines of a node's log, as IPs.
std::vector<std::string> accepted_from(const std::string& log) {
    std::vector<std::string> ips;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        const auto p = line.find("accepted link from ");
        if (p == std::string::npos) continue;
        const std::string peer = line.substr(p + 19, line.find(' ', p + 19) - (p + 19));
        ips.push_back(peer.substr(0, peer.rfind(':')));
    }
    return ips;
}

TEST(CircuitPrivacy, SpanNodesNeverAcceptAConnectionFromTheClientsAddress) {
    setenv("LLM_NODE_CIRCUIT_LOG", "1", 1);
    testing::RandomModelSpec spec;
    spec.n_layer = 6;
    const std::string model = testing::write_random_model(spec, testing::temp_path("circuit-privacy.gguf"));
    struct Member {
        std::string ip, span;
    };
    const std::vector<Member> members = {{"127.0.0.11", "0:3"}, {"127.0.0.12", "0:3"}, {"127.0.0.13", "3:6"}, {"127.0.0.14", "3:6"},
                                         {"127.0.0.21", ""},    {"127.0.0.22", ""},    {"127.0.0.23", ""}};
    const std::vector<int32_t> prompt = {1, 72, 101, 108, 108, 111};
    tensor::ThreadPool pool(1);
    engine::SessionConfig sc;
    sc.n_ctx = 64;
    engine::LocalSession local(engine::Model::load(model), sc, pool);
    const std::vector<int32_t> expected = testing::greedy(local, prompt, 6);
    // Several sessions on fresh nodes, each with its own random choices of
    // directory, relays and spans. A node may relay one session and serve a
    // span in another client's; within a session, the span nodes never meet the client.
    size_t span_links = 0, spans_served = 0;
    for (int round = 0; round < 4; ++round) {
        std::vector<std::unique_ptr<NodeProcess>> nodes;
        std::vector<std::string> addresses;
        for (const Member& m : members) {
            nodes.push_back(node_at(model, m.ip, m.span));
            addresses.push_back(nodes.back()->address());
        }
        {
            ResilientConfig fc;
            fc.remote.n_ctx = 64;
            fc.remote.wire_f32 = true;
            fc.entry_relays = fc.exit_relays = 1;
            ResilientSession s(engine::Model::load(model), [&] { return addresses; }, fc, pool);
            EXPECT_EQ(testing::greedy(s, prompt, 6), expected) << "round " << round;
        }
        for (size_t i = 0; i < nodes.size(); ++i) {
            const std::string log = nodes[i]->log();
            if (log.find("circuit span") == std::string::npos) continue;
            ++spans_served;
            for (const std::string& ip : accepted_from(log)) {
                ++span_links;
                EXPECT_NE(ip, "127.0.0.1") << "round " << round << ": span node " << members[i].ip << " (" << members[i].span
                                           << ") accepted a link from the client's address:\n" << log;
            }
        }
    }
    EXPECT_EQ(spans_served, 8u) << "4 sessions of two spans each";
    std::printf("[privacy] 4 circuits: the %zu span nodes accepted %zu links, none from the client's address 127.0.0.1\n", spans_served,
                span_links);
}

}  // namespace
}  // namespace llmn::client
