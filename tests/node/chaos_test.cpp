// Chaos: 6 `llm-node serve` processes on 127.0.0.1 (two replicas of each of
// three spans) and 8 client sessions generating 64 tokens each, again and
// again, while a driver kills -9, SIGSTOPs / SIGCONTs and restarts random
// nodes every few seconds (never both replicas of a span at once). Every
// generation must end with exactly the single-process tokens.
// LLM_NODE_CHAOS_SECONDS sets the length (default 180).
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "client/resilient_session.h"
#include "engine/local_session.h"
#include "support/greedy.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::client {
namespace {

using Clock = std::chrono::steady_clock;
using testing::NodeProcess;
using testing::greedy;

int free_tcp_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// One replica: a fixed address, so the clients' node list stays valid across restarts.
struct Replica {
    std::string model, span, address;
    std::unique_ptr<NodeProcess> proc;
    bool stopped = false;
    void start() {
        proc = std::make_unique<NodeProcess>(std::vector<std::string>{"serve", "-m", model, "--layers", span, "--listen", address, "-t", "1"});
        stopped = false;
    }
    bool up() const { return proc && !stopped; }
};

TEST(Chaos, KillsStopsAndRestartsLoseNothing) {
    const char* env = std::getenv("LLM_NODE_CHAOS_SECONDS");
    const int seconds = env ? std::atoi(env) : 180;
    testing::RandomModelSpec spec;
    spec.n_layer = 6;
    spec.n_embd = 128;
    spec.n_ff = 256;
    const std::string model = testing::write_random_model(spec, testing::temp_path("chaos.gguf"));
    std::vector<Replica> nodes;
    for (const char* span : {"0:2", "0:2", "2:4", "2:4", "4:6", "4:6"})
        nodes.push_back({model, span, "127.0.0.1:" + std::to_string(free_tcp_port()), nullptr});
    for (Replica& r : nodes) r.start();
    std::vector<std::string> addrs;
    for (const Replica& r : nodes) addrs.push_back(r.address);

    constexpr int kSessions = 8, kTokens = 64;
    std::vector<std::vector<int32_t>> prompts(kSessions), expected(kSessions);
    for (int i = 0; i < kSessions; ++i) {
        prompts[size_t(i)] = {1, 20 + i, 40 + 2 * i, 60 + 3 * i};
        expected[size_t(i)] = testing::local_greedy(model, prompts[size_t(i)], kTokens, nullptr, 96);
    }

    std::atomic<bool> done{false};
    std::atomic<int> completed{0}, wrong{0}, failed{0}, failovers{0};
    std::mutex mu;
    double longest_step = 0;
    std::string first_failure;
    const auto shared_model = engine::Model::load(model);
    std::vector<std::thread> clients;
    for (int i = 0; i < kSessions; ++i)
        clients.emplace_back([&, i] {
            tensor::ThreadPool pool(1);
            while (!done) {
                ResilientConfig fc;
                fc.remote.n_ctx = 96;
                fc.remote.wire_f32 = true;
                fc.remote.step_timeout = std::chrono::milliseconds(1500);  // a SIGSTOPped hop counts as failed after this
                fc.remote.connect_timeout = std::chrono::milliseconds(1500);
                fc.probe_timeout = std::chrono::milliseconds(800);
                fc.max_failovers = 50;
                double longest = 0;
                try {
                    ResilientSession s(shared_model, [&addrs] { return addrs; }, fc, pool);
                    const auto got = greedy(s, prompts[size_t(i)], kTokens, nullptr, &longest);
                    failovers += s.failovers();
                    if (got == expected[size_t(i)]) ++completed;
                    else ++wrong;
                } catch (const std::exception& e) {
                    ++failed;
                    std::lock_guard<std::mutex> lock(mu);
                    if (first_failure.empty()) first_failure = e.what();
                }
                std::lock_guard<std::mutex> lock(mu);
                longest_step = std::max(longest_step, longest);
            }
        });

    // The driver: every 2-4 s one action on a random node whose span keeps a live replica.
    std::mt19937 rng(12345);
    int kills = 0, stops = 0, restarts = 0;
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2000 + rng() % 2000));
        const size_t k = rng() % nodes.size();
        Replica& r = nodes[k];
        Replica& twin = nodes[k ^ 1];  // the other replica of the same span
        if (!r.proc) {
            r.start();
            ++restarts;
        } else if (r.stopped) {
            ::kill(r.proc->pid(), SIGCONT);
            r.stopped = false;
        } else if (twin.up()) {
            if (rng() % 2 == 0) {
                r.proc->kill_now();
                r.proc.reset();
                ++kills;
            } else {
                ::kill(r.proc->pid(), SIGSTOP);
                r.stopped = true;
                ++stops;
            }
        }
    }
    for (Replica& r : nodes)
        if (r.stopped) ::kill(r.proc->pid(), SIGCONT);
    done = true;
    for (auto& t : clients) t.join();
    std::printf("chaos %d s: %d generations of %d tokens completed, %d wrong, %d failed; %d kills, %d stops, %d restarts; "
                "%d failovers; longest step %.2f s\n",
                seconds, completed.load(), kTokens, wrong.load(), failed.load(), kills, stops, restarts, failovers.load(), longest_step);
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(failed.load(), 0) << first_failure;
    EXPECT_GT(completed.load(), kSessions);
    EXPECT_GT(kills + stops, 0);
}

}  // namespace
}  // namespace llmn::client
