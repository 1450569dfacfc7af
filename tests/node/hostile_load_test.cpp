// Hostile peers in waves against two real nodes while honest sessions run
// through them (issue 11): 1,000 half-open connections, slowloris senders,
// peers stalled mid-frame and the whole attack catalog, again and again. Every
// attacker must be closed (or get its ERROR) within a bound where the protocol
// sets one, the nodes must stay up, and the honest sessions must keep the
// single-process tokens and >= 90% of their tokens/s without attack.
#include <gtest/gtest.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "support/hostile_attacks.h"
#include "support/node_process.h"

namespace llmn::testing::hostile {
namespace {

// What the attackers of every wave saw.
struct WaveStats {
    std::atomic<int> half_open_closed{0}, half_open_late{0};
    std::atomic<long> half_open_max_ms{0};
    std::mutex mu;
    std::vector<long> slow_closed_ms;  // per slowloris sender; -1: never closed
    std::vector<size_t> slow_sent;     // HELLO bytes it got out
    int stalled = 0, stalled_closed = 0;
    Tally tally;
};

// One wave: 1,000 half-open connections to node A (half send nothing, half
// part of a HELLO), four slowloris senders and four peers stalled mid-frame
// after the handshake (two per node), and the quick attacks round-robin over
// both nodes (~20/s). done() once every half-open and slowloris connection has
// ended, which the node's handshake timeout bounds.
class AttackWave {
public:
    AttackWave(const std::vector<Target>& targets, WaveStats& stats) : targets_(targets), stats_(stats) {
        for (int i = 0; i < 4; ++i) {  // stalled mid-frame: a sealed PING without its last 3 bytes
            std::string e;
            std::unique_ptr<HostilePeer> p;
            try {
                p = linked(targets_[i % 2], e);
            } catch (const std::exception& x) {
                e = x.what();
            }
            if (!p) {
                stats_.tally.record("stall mid-frame", e);
                continue;
            }
            const Bytes f = p->seal(ping(100 + i));
            p->conn().send_all(f.data(), f.size() - 3);
            stalled_.push_back(std::move(p));
        }
        threads_.emplace_back([this] { half_open(); });
        threads_.emplace_back([this] { slowloris(); });
        threads_.emplace_back([this] { quick(); });
    }
    ~AttackWave() { finish(); }

    bool done() const { return half_open_done_ && slowloris_done_; }

    void finish() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
        std::lock_guard lock(stats_.mu);
        for (auto& p : stalled_) {
            ++stats_.stalled;
            if (p->conn().wait_closed(0ms)) ++stats_.stalled_closed;
        }
        stalled_.clear();
    }

private:
    static constexpr milliseconds kBound = kHandshakeTimeout + kSlack;

    void half_open() {
        attacker_thread_priority();
        struct Conn {
            RawConn c;
            Clock::time_point opened;
        };
        std::vector<Conn> conns;
        const Bytes hello = framed(net::encode(net::Hello{}));
        try {
            for (int i = 0; i < 1000; ++i) {
                conns.push_back({RawConn::dial(targets_[0].address), Clock::now()});
                if (i % 2) conns.back().c.send_all(hello.data(), 4 + size_t(i % 30));
            }
        } catch (const std::exception& e) {
            stats_.tally.record("1,000 half-open connections", e.what());
        }
        std::vector<pollfd> pfds;
        uint8_t buf[512];
        while (!conns.empty() && !stop_) {
            pfds.clear();
            for (auto& c : conns) pfds.push_back({c.c.fd(), POLLIN, 0});
            ::poll(pfds.data(), pfds.size(), 50);
            for (size_t i = 0; i < conns.size(); ++i) {
                const long ms = long(std::chrono::duration_cast<milliseconds>(Clock::now() - conns[i].opened).count());
                if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                    if (ms > kBound.count()) {
                        ++stats_.half_open_late;
                        conns[i].c.close();
                    }
                    continue;
                }
                const ssize_t r = ::recv(conns[i].c.fd(), buf, sizeof buf, MSG_DONTWAIT);
                if (r > 0 || (r < 0 && errno == EAGAIN)) continue;  // the node's HELLO
                stats_.half_open_max_ms = std::max(stats_.half_open_max_ms.load(), ms);
                ++stats_.half_open_closed;
                conns[i].c.close();
            }
            std::erase_if(conns, [](const Conn& c) { return !c.c.is_open(); });
        }
        half_open_done_ = true;
    }

    // 1 byte of a HELLO every 100 ms: the frame would take 7.1 s.
    void slowloris() {
        attacker_thread_priority();
        const Bytes hello = framed(net::encode(net::Hello{}));
        std::vector<RawConn> conns;
        std::vector<Clock::time_point> opened;
        std::vector<long> closed_ms(4, -1);
        std::vector<size_t> sent(4, 0);
        try {
            for (int i = 0; i < 4; ++i) {
                conns.push_back(RawConn::dial(targets_[i % 2].address));
                opened.push_back(Clock::now());
            }
        } catch (const std::exception& e) {
            stats_.tally.record("slowloris", e.what());
        }
        const auto t0 = Clock::now();
        auto open_left = [&] { return std::count(closed_ms.begin(), closed_ms.end(), -1L) > 0; };
        while (open_left() && Clock::now() - t0 < kBound && !stop_) {
            for (size_t i = 0; i < conns.size(); ++i) {
                if (closed_ms[i] >= 0) continue;
                if (conns[i].wait_closed(0ms) || (sent[i] < hello.size() && !conns[i].send_all(&hello[sent[i]], 1))) {
                    closed_ms[i] = long(std::chrono::duration_cast<milliseconds>(Clock::now() - opened[i]).count());
                    continue;
                }
                if (sent[i] < hello.size()) ++sent[i];
            }
            std::this_thread::sleep_for(100ms);
        }
        std::lock_guard lock(stats_.mu);
        stats_.slow_closed_ms.insert(stats_.slow_closed_ms.end(), closed_ms.begin(), closed_ms.end());
        stats_.slow_sent.insert(stats_.slow_sent.end(), sent.begin(), sent.end());
        slowloris_done_ = true;
    }

    void quick() {
        attacker_thread_priority();
        const std::vector<Attack> all = attacks();
        for (size_t n = 0; !stop_; ++n) {
            const Attack& atk = all[n % all.size()];
            stats_.tally.record(atk.name, run_one(atk, targets_[(n / all.size() + n) % 2]));
            std::this_thread::sleep_for(50ms);  // ~20 attacks/s: hostile peers, not a flood (out of scope)
        }
    }

    const std::vector<Target>& targets_;
    WaveStats& stats_;
    std::vector<std::unique_ptr<HostilePeer>> stalled_;
    std::atomic<bool> stop_{false}, half_open_done_{false}, slowloris_done_{false};
    std::vector<std::thread> threads_;
};

// Quiet windows and attack waves alternate, quiet first and last (Q A Q A Q A
// Q), about as long each, so that the baseline and the attacked figures see
// the same background load. Each figure is the median tok/s of all its rounds.
// On a small shared machine that load (other builds, tests, fuzzers) can move
// tokens/s by more than 10% between windows even without an attack; when the
// quiet windows disagree by more than kNoisy, the 90% check cannot resolve a
// 10% loss, and only a gross loss (below kFloor) fails the test.
TEST(HostileLoad, HonestSessionsKeepTheirTokensAndSpeedUnderAttack) {
    raise_fd_limit(8192);  // 1,000 half-open connections here and in the node
    const std::string model = make_model();
    NodeProcess a(model, "0:2"), b(model, "2:4");
    const std::vector<Target> targets = {{a.address(), 0, 2}, {b.address(), 2, 4}};
    Honest honest(model, {a.address(), b.address()});
    std::vector<std::string> errors;
    honest.round(errors);  // warm-up: pages, the link between the nodes
    ASSERT_TRUE(errors.empty()) << errors.front();

    constexpr int kWaves = 3;
    constexpr int kMinRounds = 5;         // per window
    constexpr double kQuietSeconds = 4;   // an attack wave lasts ~5.5 s (the handshake timeout)
    constexpr double kTarget = 0.9, kNoisy = 1.15, kFloor = 0.7;
    struct Window {
        std::vector<double> tok_s;  // every round
        std::vector<double> medians;  // per window
        double seconds = 0, cpu_a = 0, cpu_b = 0;
    } quiet, attacked;
    WaveStats stats;
    const auto t_test = Clock::now();
    for (int w = 0; w <= kWaves; ++w) {
        for (const bool attack : {false, true}) {
            if (attack && w == kWaves) break;
            Window& win = attack ? attacked : quiet;
            const auto t0 = Clock::now();
            const double a0 = cpu_seconds(a.pid()), b0 = cpu_seconds(b.pid());
            std::vector<double> rounds;
            if (attack) {
                AttackWave wave(targets, stats);
                while ((int(rounds.size()) < kMinRounds || !wave.done()) && seconds_since(t0) < 15) rounds.push_back(honest.round(errors));
                wave.finish();
            } else {
                while (int(rounds.size()) < kMinRounds || seconds_since(t0) < kQuietSeconds) rounds.push_back(honest.round(errors));
            }
            win.seconds += seconds_since(t0);
            win.cpu_a += cpu_seconds(a.pid()) - a0;
            win.cpu_b += cpu_seconds(b.pid()) - b0;
            win.medians.push_back(median(rounds));
            win.tok_s.insert(win.tok_s.end(), rounds.begin(), rounds.end());
        }
    }

    const double base = median(quiet.tok_s), under = median(attacked.tok_s), kept = under / base;
    const double spread = *std::max_element(quiet.medians.begin(), quiet.medians.end()) /
                          *std::min_element(quiet.medians.begin(), quiet.medians.end());
    auto list = [](const std::vector<double>& v) {
        std::string s;
        for (double x : v) {
            if (!s.empty()) s += ' ';
            s += std::to_string(int(x + 0.5));
        }
        return s;
    };
    std::printf("[hostile] honest tok/s (2 sessions x %d tokens each round, 2-node route), medians: %.1f without attack "
                "(%zu rounds), %.1f under attack (%zu rounds): %.0f%%\n",
                kTokens, base, quiet.tok_s.size(), under, attacked.tok_s.size(), 100 * kept);
    std::printf("[hostile] per window: quiet %s; attacked %s; the quiet windows differ by %.0f%%\n", list(quiet.medians).c_str(),
                list(attacked.medians).c_str(), 100 * (spread - 1));
    std::printf("[hostile] CPU of the attacked nodes without / under attack: A %.0f%% / %.0f%%, B %.0f%% / %.0f%% of a core "
                "(%.1f s in all)\n",
                100 * quiet.cpu_a / quiet.seconds, 100 * attacked.cpu_a / attacked.seconds, 100 * quiet.cpu_b / quiet.seconds,
                100 * attacked.cpu_b / attacked.seconds, seconds_since(t_test));
    std::printf("[hostile] half-open: %d closed by the node (slowest after %ld ms), %d still open after %lld ms\n",
                stats.half_open_closed.load(), stats.half_open_max_ms.load(), stats.half_open_late.load(),
                (long long)(kHandshakeTimeout + kSlack).count());
    int attack_runs = 0;
    for (auto& [name, n] : stats.tally.runs) attack_runs += n;
    std::printf("[hostile] %d quick attacks of %zu kinds during the honest rounds, %zu failed; %d of %d peers stalled "
                "mid-frame were closed by the node during the attack (a silent link goes after the session idle time\n"
                "plus up to 60 s: 600 s here; HostilePeer.ASilentOrStalledPeerLosesItsLink checks it)\n",
                attack_runs, stats.tally.runs.size(), stats.tally.failures.size(), stats.stalled_closed, stats.stalled);
    RecordProperty("tok_s_without_attack", std::to_string(base));
    RecordProperty("tok_s_under_attack", std::to_string(under));

    EXPECT_TRUE(errors.empty()) << errors.size() << " honest session(s) failed, first: " << errors.front();
    for (const auto& f : stats.tally.failures) ADD_FAILURE() << f;
    EXPECT_EQ(stats.tally.runs.size(), attacks().size()) << "some quick attack never ran";
    EXPECT_EQ(stats.half_open_closed.load(), 1000 * kWaves);
    EXPECT_EQ(stats.half_open_late.load(), 0) << "half-open connections outlived the handshake timeout";
    const size_t hello_bytes = framed(net::encode(net::Hello{})).size();
    ASSERT_EQ(stats.slow_closed_ms.size(), size_t(4 * kWaves));
    long slow_max = 0;
    for (size_t i = 0; i < stats.slow_closed_ms.size(); ++i) {
        EXPECT_GE(stats.slow_closed_ms[i], 0) << "slowloris " << i << " was never closed";
        EXPECT_LT(stats.slow_sent[i], hello_bytes) << "slowloris " << i << " got its whole HELLO out";
        slow_max = std::max(slow_max, stats.slow_closed_ms[i]);
    }
    std::printf("[hostile] slowloris: %zu senders closed by the node after at most %ld ms, before their %zu-byte HELLO\n",
                stats.slow_closed_ms.size(), slow_max, hello_bytes);
    if (spread <= kNoisy) {
        EXPECT_GE(kept, kTarget) << "honest tokens/s under attack fell below 90% of the baseline";
    } else {
        std::printf("[hostile] the baseline moved by %.0f%% between quiet windows (machine load): too noisy to check "
                    "90%%; checking only that no more than %.0f%% is lost\n", 100 * (spread - 1), 100 * (1 - kFloor));
        EXPECT_GE(kept, kFloor) << "honest tokens/s under attack fell far below the baseline";
    }
    EXPECT_TRUE(a.alive() && b.alive());
    // After all that, a fresh honest session still gets the single-process tokens.
    errors.clear();
    honest.round(errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
}

}  // namespace
}  // namespace llmn::testing::hostile
