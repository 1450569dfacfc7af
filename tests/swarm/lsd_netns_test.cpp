// LAN discovery (BEP 14) between two network namespaces joined by a veth
// pair: two standalone nodes with no bootstrap find each other's serving port.
// LSD multicasts, so it is never run on the host's own interfaces. Needs root
// and `ip netns`; skips with a message otherwise.
#include "swarm/dht.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

namespace llmn::swarm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// Builds a Dht on a thread that first enters netns `ns`: the sockets and the
// threads the session starts belong to that namespace.
std::unique_ptr<Dht> dht_in_netns(const std::string& ns, const Dht::Config& cfg, std::string& error) {
    std::unique_ptr<Dht> out;
    std::thread t([&] {
        int fd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            error = "cannot enter netns " + ns;
            if (fd >= 0) ::close(fd);
            return;
        }
        ::close(fd);
        try {
            out = std::make_unique<Dht>(cfg);
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    t.join();
    return out;
}

class LanPair : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "LSD test needs root (ip netns + veth); skipped";
        std::string tag = std::to_string(::getpid() % 1000000);
        ns_a_ = "llmn_lsd_a" + tag;
        ns_b_ = "llmn_lsd_b" + tag;
        std::string va = "llmn" + tag + "a", vb = "llmn" + tag + "b";
        if (!sh("ip netns add " + ns_a_)) GTEST_SKIP() << "`ip netns add` failed; skipped";
        created_ = true;
        bool ok = sh("ip netns add " + ns_b_) && sh("ip link add " + va + " type veth peer name " + vb) &&
                  sh("ip link set " + va + " netns " + ns_a_) && sh("ip link set " + vb + " netns " + ns_b_);
        for (auto [ns, dev, ip] : {std::tuple{ns_a_, va, "10.231.0.1"}, std::tuple{ns_b_, vb, "10.231.0.2"}}) {
            ok = ok && sh("ip -n " + ns + " addr add " + ip + "/24 dev " + dev) &&
                 sh("ip -n " + ns + " link set " + dev + " up multicast on") && sh("ip -n " + ns + " link set lo up") &&
                 sh("ip -n " + ns + " route add 224.0.0.0/4 dev " + dev);
        }
        if (!ok) GTEST_SKIP() << "could not build the veth pair between " << ns_a_ << " and " << ns_b_;
    }
    void TearDown() override {
        if (!created_) return;
        sh("ip netns del " + ns_a_);  // deleting a namespace deletes its veth end, and the pair
        sh("ip netns del " + ns_b_);
    }

    std::string ns_a_, ns_b_;
    bool created_ = false;
};

TEST_F(LanPair, NodesWithoutBootstrapFindEachOtherThroughLsd) {
    Dht::Config c;
    c.lan_discovery = true;
    c.port_mapping = false;
    c.standalone = true;
    std::string err;
    c.listen = "10.231.0.1:0";
    auto a = dht_in_netns(ns_a_, c, err);
    ASSERT_TRUE(a) << err;
    c.listen = "10.231.0.2:0";
    auto b = dht_in_netns(ns_b_, c, err);
    ASSERT_TRUE(b) << err;

    const net::Key32 model = net::digest256("lan-model");
    auto t0 = Clock::now();
    a->announce(model, 7100);
    b->announce(model, 7200);
    std::vector<std::string> from_a, from_b;
    auto deadline = t0 + 30s;
    while (Clock::now() < deadline) {
        from_a = a->peers(model, 1s);
        from_b = b->peers(model, 1s);
        bool a_sees_b = std::count(from_a.begin(), from_a.end(), "10.231.0.2:7200") == 1;
        bool b_sees_a = std::count(from_b.begin(), from_b.end(), "10.231.0.1:7100") == 1;
        if (a_sees_b && b_sees_a) break;
    }
    EXPECT_EQ(std::count(from_a.begin(), from_a.end(), "10.231.0.2:7200"), 1) << "a found " << from_a.size();
    EXPECT_EQ(std::count(from_b.begin(), from_b.end(), "10.231.0.1:7100"), 1) << "b found " << from_b.size();
    std::cout << "[ swarm    ] LAN pair found each other in "
              << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n";
}

}  // namespace
}  // namespace llmn::swarm
