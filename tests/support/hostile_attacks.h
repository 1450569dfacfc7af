// Hostile peers against real `llm-node serve` processes (issue 11), shared by
// tests/node/hostile_*_test.cpp: the catalog of attacks (each in its own
// connections, returning "" when the node behaved), honest sessions that check
// their tokens against the single process, and /proc probes of a node.
// The attacks are defined in hostile_attacks_test.cpp, the rest in
// hostile_peer_test.cpp.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/model.h"
#include "support/hostile_peer.h"

namespace llmn::testing::hostile {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The node's limits the tests rely on (net::LinkOptions / NodeConfig defaults).
inline constexpr milliseconds kHandshakeTimeout = 5000ms;
inline constexpr uint32_t kMaxFrame = 64u << 20;
inline constexpr uint32_t kMaxHandshakeFrame = 256;
// How long a local node may take to end a link after a violation it sees at once.
inline constexpr milliseconds kPrompt = 3000ms;
// Slack on top of the handshake timeout for a loaded 2-core machine.
inline constexpr milliseconds kSlack = 3000ms;
inline constexpr int kEmbd = 64;    // of make_model()
inline constexpr int kTokens = 64;  // generated per honest session and round

// A node as an attacker sees it.
struct Target {
    std::string address;
    int span_start = 0, span_end = 0;
};

struct Attack {
    const char* name;
    std::function<std::string(const Target&)> run;  // "" when the node behaved
};

// Every attack of the catalog: before the handshake (oversize, garbage,
// truncated, bad version, bad AUTH signature, reflected AUTH) and after a real
// one (oversize, truncated, garbage, replayed, reordered and bit-flipped
// frames, a sealed HELLO, a wrong model id, a STEP and CLOSE for another link's session).
std::vector<Attack> attacks();
// a.run(t), with an exception as its failure.
std::string run_one(const Attack& a, const Target& t);

// A handshaken link that has read the node's NODE_INFO, or null and `error`.
std::unique_ptr<HostilePeer> linked(const Target& t, std::string& error, net::NodeInfo* info = nullptr);
net::Ping ping(uint64_t nonce);
Bytes random_bytes(size_t n, uint32_t seed);
template <class T>
bool is(const std::optional<net::Message>& m) {
    return m && std::holds_alternative<T>(*m);
}
// Waits (bounded) for a message of type T, skipping others.
template <class T>
bool awaits(HostilePeer& p, milliseconds timeout = kPrompt) {
    return is<T>(p.receive_until([](const net::Message& m) { return std::holds_alternative<T>(m); }, timeout));
}

// Counts of attacks run and their failures, from many threads.
struct Tally {
    std::mutex mu;
    std::map<std::string, int> runs;
    std::vector<std::string> failures;
    void record(const std::string& name, const std::string& failure) {
        std::lock_guard lock(mu);
        ++runs[name];
        if (!failure.empty() && failures.size() < 50) failures.push_back(name + ": " + failure);
    }
};

// Two sessions over `route`, each generating kTokens greedy tokens at once
// (f32 on the wire), checked against the single process.
class Honest {
public:
    Honest(const std::string& model_path, std::vector<std::string> route);
    // One round; tokens/s of the whole round (session setup included).
    // `errors` gets one line per failed or wrong session.
    double round(std::vector<std::string>& errors);

private:
    std::shared_ptr<const engine::Model> model_;
    std::vector<std::string> route_;
    std::vector<std::vector<int32_t>> prompts_ = {{1, 260, 17, 42}, {1, 5, 9, 33, 7, 281}};
    std::vector<std::vector<int32_t>> want_;
};

// A 4-layer random llama (q8_0, n_embd kEmbd), written once per process.
std::string make_model();
double seconds_since(Clock::time_point t0);
double median(std::vector<double> v);
// Resident memory and CPU time (user + system) of a process, from /proc.
uint64_t rss_kib(pid_t pid);
double cpu_seconds(pid_t pid);
// Raises this process's RLIMIT_NOFILE soft limit (a node it starts inherits it).
void raise_fd_limit(uint64_t want);
// Attackers stand for other machines: their own CPU is not the node's cost, so
// on a small shared test machine their threads run at a lower priority than
// the honest client (the nodes' cost of every attack still counts).
void attacker_thread_priority();

}  // namespace llmn::testing::hostile
