// Hostile peers that cost a node resources rather than break its protocol: a
// peer stalled inside a big frame, and connections beyond the node's fd limit.
// Also the helpers of tests/support/hostile_attacks.h other than the attacks.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/remote_session.h"
#include "engine/local_session.h"
#include "support/greedy.h"
#include "support/hostile_attacks.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "tensor/thread_pool.h"

namespace llmn::testing::hostile {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

uint64_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    return 0;
}
double cpu_seconds(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

void attacker_thread_priority() { setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), 10); }

void raise_fd_limit(uint64_t want) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = std::min(want, rl.rlim_max);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

std::string make_model() {
    static std::mutex mu;
    static std::string path;
    std::lock_guard lock(mu);
    if (!path.empty()) return path;
    RandomModelSpec spec;
    spec.arch = "llama";
    spec.n_layer = 4;
    spec.n_embd = kEmbd;
    spec.weight_type = tensor::DType::q8_0;
    spec.seed = 11;
    path = write_random_model(spec, temp_path("hostile-llama.gguf"));
    return path;
}

Honest::Honest(const std::string& model_path, std::vector<std::string> route)
    : model_(engine::Model::load(model_path)), route_(std::move(route)) {
    for (const auto& p : prompts_) {
        tensor::ThreadPool pool(1);
        engine::SessionConfig sc;
        sc.n_ctx = 128;
        engine::LocalSession s(model_, sc, pool);
        want_.push_back(greedy(s, p, kTokens));
    }
}

double Honest::round(std::vector<std::string>& errors) {
    std::vector<std::string> err(prompts_.size());
    std::vector<std::thread> threads;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < prompts_.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                tensor::ThreadPool pool(1);
                client::RemoteConfig rc;
                rc.n_ctx = 128;
                rc.wire_f32 = true;  // bit-identical to the single process
                rc.step_timeout = 10000ms;
                client::RemoteSession s(model_, route_, rc, pool);
                if (greedy(s, prompts_[i], kTokens) != want_[i]) err[i] = "session " + std::to_string(i) + ": tokens differ from the single process";
            } catch (const std::exception& e) {
                err[i] = "session " + std::to_string(i) + ": " + e.what();
            }
        });
    for (auto& t : threads) t.join();
    const double s = seconds_since(t0);
    for (auto& e : err)
        if (!e.empty()) errors.push_back(e);
    return double(kTokens * prompts_.size()) / s;
}

namespace {

// A peer that announces a big frame after the handshake and then stalls holds
// only the memory it has sent, not the announced length.
TEST(HostilePeer, AStalledBigFrameHoldsNoMemoryItDidNotSend) {
    const std::string model = make_model();
    NodeProcess a(model, "0:2");
    const Target t{a.address(), 0, 2};
    std::string e;
    auto warm = linked(t, e);
    ASSERT_TRUE(warm) << e;
    std::this_thread::sleep_for(200ms);
    const uint64_t before = rss_kib(a.pid());
    constexpr int kPeers = 8;
    constexpr uint32_t kAnnounced = 48u << 20;
    std::vector<std::unique_ptr<HostilePeer>> stalled;
    for (int i = 0; i < kPeers; ++i) {
        auto p = linked(t, e);
        ASSERT_TRUE(p) << e;
        p->conn().send_all(prefix_only(kAnnounced));
        p->conn().send_all(random_bytes(1000, 20 + i));  // a little body, then nothing
        stalled.push_back(std::move(p));
    }
    std::this_thread::sleep_for(500ms);
    const uint64_t after = rss_kib(a.pid());
    std::printf("[hostile] node RSS %llu KiB before, %llu KiB with %d peers stalled inside %u MiB frames\n",
                (unsigned long long)before, (unsigned long long)after, kPeers, kAnnounced >> 20);
    EXPECT_LT(after, before + 32 * 1024) << "the node committed memory for frame bodies that never came";
    // The node still serves.
    warm->send(ping(5));
    EXPECT_TRUE(awaits<net::Pong>(*warm));
    EXPECT_TRUE(a.alive());
}

// A peer that sends nothing, or stalls inside a frame, loses its link once it has been silent
// longer than a session may idle (here 1 s + 1 s), while a peer that keeps talking keeps its.
TEST(HostilePeer, ASilentOrStalledPeerLosesItsLink) {
    const std::string model = make_model();
    NodeProcess a(model, "0:2", {"--idle-timeout", "1"});
    const Target t{a.address(), 0, 2};
    std::string e;
    auto silent = linked(t, e);
    ASSERT_TRUE(silent) << e;
    auto stalled = linked(t, e);
    ASSERT_TRUE(stalled) << e;
    auto talker = linked(t, e);
    ASSERT_TRUE(talker) << e;
    stalled->conn().send_all(prefix_only(4096));
    stalled->conn().send_all(random_bytes(100, 7));
    // Each of the two must see its link end (an ERROR then EOF, or EOF) within 8 s.
    auto ended = [](HostilePeer& p, Clock::time_point deadline) {
        while (Clock::now() < deadline) {
            const HostilePeer::Received r = p.receive(milliseconds(200));
            if (r.got == RawConn::Got::eof || r.got == RawConn::Got::error) return true;
        }
        return false;
    };
    const auto t0 = Clock::now();
    bool silent_ended = false, stalled_ended = false;
    for (uint64_t n = 1; Clock::now() - t0 < std::chrono::seconds(8) && !(silent_ended && stalled_ended); ++n) {
        ASSERT_TRUE(talker->send(ping(n)));
        ASSERT_TRUE(awaits<net::Pong>(*talker)) << "a peer that keeps talking lost its link";
        silent_ended = silent_ended || ended(*silent, Clock::now() + milliseconds(150));
        stalled_ended = stalled_ended || ended(*stalled, Clock::now() + milliseconds(150));
    }
    std::printf("[hostile] silent and stalled peers cut off after %.1f s\n", seconds_since(t0));
    EXPECT_TRUE(silent_ended) << "a peer that sent nothing kept its link";
    EXPECT_TRUE(stalled_ended) << "a peer stalled inside a frame kept its link";
    EXPECT_TRUE(a.alive());
}

// At its fd limit the node keeps its links, does not spin on the pending
// connections it cannot accept, and accepts again once fds are free.
TEST(HostilePeer, AtItsFdLimitTheNodeDoesNotSpinAndRecovers) {
    const std::string model = make_model();
    rlimit old{};
    getrlimit(RLIMIT_NOFILE, &old);
    rlimit low = old;
    low.rlim_cur = 96;  // inherited by the node
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::unique_ptr<NodeProcess> a;
    try {
        a = std::make_unique<NodeProcess>(model, "0:4");
    } catch (...) {
        setrlimit(RLIMIT_NOFILE, &old);
        throw;
    }
    setrlimit(RLIMIT_NOFILE, &old);
    const Target t{a->address(), 0, 4};
    std::string e;
    auto kept = linked(t, e);
    ASSERT_TRUE(kept) << e;
    std::vector<RawConn> flood;
    for (int i = 0; i < 200; ++i) flood.push_back(RawConn::dial(t.address));
    std::this_thread::sleep_for(300ms);
    const double cpu0 = cpu_seconds(a->pid());
    std::this_thread::sleep_for(1500ms);
    const double busy = (cpu_seconds(a->pid()) - cpu0) / 1.5;
    std::printf("[hostile] node at its fd limit (96) with 200 pending connections: %.0f%% of a core\n", busy * 100);
    EXPECT_LT(busy, 0.3) << "the accept loop spins on EMFILE";
    kept->send(ping(11));
    EXPECT_TRUE(awaits<net::Pong>(*kept));
    flood.clear();
    // Pending connections the node could not accept are accepted (and time out) later; a new link gets through.
    const auto t0 = Clock::now();
    std::unique_ptr<HostilePeer> fresh;
    while (!fresh && seconds_since(t0) < 12) {
        try {
            fresh = linked(t, e);
        } catch (const std::exception& x) {
            e = x.what();
        }
        if (!fresh) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(fresh) << "no new link within 12 s: " << e;
    EXPECT_TRUE(a->alive());
}

}  // namespace
}  // namespace llmn::testing::hostile
