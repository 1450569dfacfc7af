// Finding 3 of the security review, round 2: hop identities are pinned. A
// client that learnt a node's key (from a probe, or a signed NODE_INFO that a
// directory node relayed) refuses whoever else answers at that address, and
// tells each hop which key its next hop must prove (OPEN_SESSION.next_hop_id;
// the node side is in hostile_round2_test.cpp). Before, every link accepted
// whoever answered at the address.
#include <gtest/gtest.h>

#include "client/remote_session.h"
#include "net/identity.h"
#include "net/probe.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using testing::NodeProcess;

TEST(Pinning, ARouteRefusesANodeAnsweringWithAnotherKeyThanTheOnePinned) {
    testing::RandomModelSpec spec;
    spec.n_layer = 4;
    const std::string model = testing::write_random_model(spec, testing::temp_path("pinning.gguf"));
    NodeProcess a(model, "0:2"), b(model, "2:4");
    tensor::ThreadPool pool(1);
    RemoteConfig rc;
    rc.n_ctx = 32;
    // The right keys (as a probe learnt them): the route opens.
    for (const net::ProbedNode& p : net::probe_nodes({a.address(), b.address()}, std::chrono::milliseconds(2000)))
        rc.pinned[p.address] = p.identity;
    ASSERT_EQ(rc.pinned.size(), 2u);
    EXPECT_NO_THROW(RemoteSession(engine::Model::load(model), {a.address(), b.address()}, rc, pool));
    // Someone else's key for B (an impostor answers there, or B was replaced): refused, naming B.
    rc.pinned[b.address()] = net::Identity::generate().public_key();
    try {
        RemoteSession s(engine::Model::load(model), {a.address(), b.address()}, rc, pool);
        FAIL() << "a node with another key than the pinned one was accepted";
    } catch (const RemoteError& e) {
        EXPECT_EQ(e.hop(), b.address()) << e.what();
        EXPECT_NE(std::string(e.what()).find(b.address()), std::string::npos) << e.what();
    }
}

TEST(Pinning, NodeInfoIsSignedSoADirectoryCannotAlterIt) {
    testing::RandomModelSpec spec;
    spec.n_layer = 4;
    const std::string model = testing::write_random_model(spec, testing::temp_path("pinning-sig.gguf"));
    NodeProcess relay(NodeProcess::with({"serve", "-m", model, "--relay-only", "--listen", "127.0.0.1:0"}, {}));
    NodeProcess span(model, "0:4");
    const net::ProbeReport r = net::probe_through(relay.address(), {span.address()}, std::chrono::milliseconds(2000));
    ASSERT_EQ(r.nodes.size(), 2u) << r.summary(2);
    const net::ProbedNode& p = r.nodes[1];
    EXPECT_EQ(p.address, span.address());
    EXPECT_EQ(p.info.span_end, 4u);
    EXPECT_TRUE(net::node_info_signed_by(p.info, p.identity));
    net::NodeInfo altered = p.info;
    altered.span_end = 2;  // what a lying directory would like the client to believe
    EXPECT_FALSE(net::node_info_signed_by(altered, p.identity));
    EXPECT_FALSE(net::node_info_signed_by(p.info, net::Identity::generate().public_key()));
}

}  // namespace
}  // namespace llmn::client
