// Trust but verify: the client re-runs what span hops computed on other nodes
// serving the same layers (replicas) and compares.
//
// An audited route (RemoteConfig::verify_rate > 0) opens its sessions with
// OPEN_SESSION.audit, so every hop signs each step's input and output digests
// and sends the client a RECEIPT with its output (net/audit.h). The client
// keeps those outputs; after a step, with probability verify_rate (a choice
// made after the hops answered, and never told to them), it sends each
// replica the inputs its hop received since the last audit, one request per
// hop step with the hop's shape, on a session that runs the hop's kernel set,
// and compares the replica's outputs with the hop's, position by position.
// Two modes:
// - sampled (the default): each hop's receipt carries the KV rows its step
//   wrote (OPEN_SESSION.audit 2). With probability verify_rate after a step,
//   the replica is sent the hop's KV rows since its last replay and the input
//   of the hop's latest step, and runs only that step: the extra compute is
//   the rate, and every step is checked with that probability (output and KV
//   rows), unpredictably to the hop. Text waits only for replays in flight.
// - every position (verify_every): the replica re-runs every step, so no
//   wrong position ever reaches the text, at the cost of a full re-run.
// Off the critical path either way.
//
// AuditBook is the bookkeeping, with no I/O: the receipts, which positions
// each replica was sent and has confirmed, the digest chain between hops, and
// the comparison. RemoteSession does the I/O.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/messages.h"

namespace llmn::client {

// Relative L2 error above which a position counts as wrong. A replica runs
// the hop's steps with the hop's kernels (OPEN_SESSION.isa) and shape, so an
// honest replica of the same build gives the same bits (error 0). The
// tolerance is for what cannot be matched: float weights checked on other
// kernels (honest spread up to 0.004, bench/RESULTS.md "Verification") and
// nodes built by other compilers. Quantized weights are never checked across
// kernel sets unless the user sets a tolerance: one rounding of the 8-bit
// activations that flips between kernels grows to percents over a span.
inline constexpr double kDefaultVerifyTolerance = 0.006;
// A position above kSuspectError is held (not confirmed) until the mean error
// over it and the kWindowRows - 1 positions after it is known: above
// kSuspectError too, it is wrong. Honest spikes are rare and alone; a hop that
// adds noise to every step fails this at once.
inline constexpr double kSuspectError = 0.003;
inline constexpr int kWindowRows = 16;
// Sampled mode's share of steps re-run: the extra compute (bench/RESULTS.md "Verification").
inline constexpr double kDefaultVerifyRate = 0.1;

// ||got - want|| / ||want|| over one row (0 when both are zero; inf when only want is).
double relative_l2(const float* got, const float* want, int n);
// A 16-number random projection of a row (seeded), for reports: two rows'
// sketches show how far apart they were without carrying the rows.
std::vector<float> sketch_row(const float* row, int n, uint64_t seed);

// A hop the client can prove wrong, or show disagreeing with its replica.
struct AuditFault {
    size_t hop = 0;        // index in the route
    uint32_t pos = 0;      // first wrong position; positions before it are verified
    std::string what;      // one line
    double rel_error = 0;  // output mismatch: the relative L2 error at pos
    std::optional<net::Receipt> receipt;          // the hop's signed receipt of that step (no output bytes)
    std::optional<net::Receipt> replica_receipt;  // the replica's, of the batch that showed it
    std::vector<float> hop_sketch, replica_sketch;
};

// A batch for a replica: the inputs of hop `hop` for positions pos .. pos + n - 1;
// in sampled mode, after loading the hop's KV rows of [kv_from, pos) (n_tokens 0: only that).
struct AuditRequest {
    size_t hop = 0;
    uint32_t pos = 0, n_tokens = 0;
    uint8_t dtype = 0;
    std::vector<uint8_t> hidden;
    uint32_t kv_from = 0;
    std::vector<uint8_t> kv;
};

// A replay carries at most this many bytes of KV rows; longer histories go in
// rows-only requests first (the wire's byte vectors stop at 64 MiB).
inline constexpr size_t kMaxReplayKvBytes = size_t(8) << 20;

class AuditBook {
public:
    // `hop_ids`: the identity each hop proved; `session_ids`: the session id
    // each hop has; `audited[i]`: hop i has a replica.
    // `kv_pos_bytes[i]`: KV bytes per position of hop i's layers (sampled mode; empty: every-position mode).
    AuditBook(net::Key32 model_id, std::vector<net::Key32> hop_ids, std::vector<uint64_t> session_ids, std::vector<bool> audited, int n_embd,
              double tolerance, uint64_t sketch_seed, std::vector<size_t> kv_pos_bytes = {});
    bool sampled() const { return !kv_pos_bytes_.empty(); }

    // The client's input to the first hop, and the last hop's RESULT bytes.
    void on_sent(uint32_t pos, uint32_t n_tokens, uint8_t dtype, std::vector<uint8_t> bytes);
    void on_result(uint32_t pos, std::vector<uint8_t> bytes);
    // A hop's RECEIPT; a fault when it is malformed or not signed by the hop.
    std::optional<AuditFault> on_receipt(size_t hop, net::Receipt r);

    // The next request for hop's replica: the hop's next step not yet sent
    // (before `n_past`, with the hop's shape), once its input and the hop's
    // receipt are here; the caller loops until none is left. A broken digest chain (a hop
    // that sent the next hop other bytes than it receipted) is a fault.
    struct Next {
        std::optional<AuditRequest> request;
        std::optional<AuditFault> fault;
    };
    Next next_request(size_t hop, uint32_t n_past);
    // Sampled mode: the step the client sent last (ending at `end`) is to be
    // replayed on every audited hop (the coin came up after the hops answered).
    void want_replay(uint32_t end);
    // The next replay for hop's replica: a wanted step, once its receipt is here,
    // after the hop's KV rows since the replica's last position (rows-only
    // requests first where they are long); or nothing. The caller loops until nothing.
    Next next_replay(size_t hop, uint32_t n_past);
    // The replica's outputs for a request (its RESULT bytes and its RECEIPT):
    // a fault at the first position beyond the tolerance.
    std::optional<AuditFault> on_replica_result(size_t hop, uint32_t pos, uint32_t n_tokens, uint8_t dtype, const std::vector<uint8_t>& bytes,
                                                std::optional<net::Receipt> replica_receipt);
    // At the end of a generation: decides the held positions on the errors
    // there are (the window reaches back before them where it must).
    std::optional<AuditFault> close_windows();
    // The replica is gone or answered out of turn: the hop's positions are no
    // longer waited for (it stays unaudited until the route is rebuilt).
    void drop_replica(size_t hop);

    // Positions [0, verified()) are confirmed by every hop's replica.
    uint32_t verified() const;
    // Every request sent has come back and nothing is left to send below n_past.
    bool idle(uint32_t n_past) const;
    bool audited(size_t hop) const { return hops_[hop].audited; }
    bool awaiting_replica(size_t hop) const { return !hops_[hop].in_flight.empty(); }
    // The first hop whose receipt for a step sent is missing, if any.
    std::optional<size_t> missing_receipt() const;
    uint64_t positions_checked() const { return checked_; }
    double max_error() const { return max_error_; }  // the largest relative error that passed
    double mean_error() const { return checked_ ? sum_error_ / double(checked_) : 0.0; }

private:
    struct Step {
        uint32_t n_tokens = 0;
        uint8_t dtype = 0;
        std::optional<net::Receipt> receipt;  // hidden: the hop's output bytes
    };
    struct Hop {
        bool audited = false;
        std::map<uint32_t, Step> steps;  // by position of the step's first token
        uint32_t requested = 0;          // positions [0, requested) were sent to the replica
        uint32_t confirmed = 0;          // positions [0, confirmed) matched
        uint32_t compared = 0;           // positions [0, compared) came back from the replica
        std::deque<std::pair<uint32_t, double>> errors;  // recent positions' errors (the windows)
        std::deque<uint32_t> suspects;   // held positions, in order
        std::vector<std::pair<uint32_t, uint32_t>> in_flight;  // (pos, n_tokens) sent, not yet answered
        std::deque<uint32_t> wanted;     // sampled: steps (by position) to replay once their receipts are here
    };
    struct Sent {
        uint32_t n_tokens = 0;
        uint8_t dtype = 0;
        std::vector<uint8_t> bytes;
        std::vector<bool> receipted;  // by hop: its receipt for this step came
        size_t receipts = 0;
    };
    const std::vector<uint8_t>* input_of(size_t hop, uint32_t pos) const;
    // The digest chain of one receipted step (and its KV rows in sampled mode): a fault if broken.
    std::optional<AuditFault> check_step(size_t hop, uint32_t p, const net::Receipt& rc, const std::vector<uint8_t>& in) const;
    std::optional<AuditFault> compare_kv(size_t hop, uint32_t pos, const net::Receipt& ours, const std::optional<net::Receipt>& theirs) const;
    AuditFault fault(size_t hop, uint32_t pos, std::string what) const;
    // Decides the hop's held positions whose window is complete (all of them when `closing`).
    std::optional<AuditFault> resolve(size_t hop, bool closing);
    size_t row_bytes(uint8_t dtype) const;
    void prune();

    net::Key32 model_id_;
    std::vector<net::Key32> ids_;
    std::vector<Hop> hops_;
    std::vector<uint64_t> session_ids_;
    std::map<uint32_t, Sent> sent_;  // the first hop's inputs, by position
    std::map<uint32_t, std::vector<uint8_t>> results_;  // the last hop's outputs, until its receipt comes
    int n_embd_;
    double tolerance_;
    uint64_t sketch_seed_;
    std::vector<size_t> kv_pos_bytes_;
    uint64_t checked_ = 0;
    double max_error_ = 0, sum_error_ = 0;
};

}  // namespace llmn::client
