// The node's compute thread: takes span steps of many sessions, batches the
// ready ones (at most one step per session per pass) into one forward pass, and
// hands each result to a callback (which posts it to the io thread).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/layer_span.h"
#include "tensor/thread_pool.h"

namespace llmn::node {

struct ComputeJob {
    uint64_t session_id = 0;
    std::shared_ptr<engine::KvCache> cache;
    int pos = 0;
    int n_tokens = 0;
    int first = 0, last = -1;   // sub-span of the node's span (relative), -1 = its end
    std::vector<float> hidden;  // [n_tokens, n_embd]
    int64_t t_arrived = 0;      // steady-clock ns, for LLM_NODE_TRACE_STEPS
    int isa = -1;               // tensor::Isa to run on (-1: the process's)
    // Audited: shares a pass only where that keeps its bits (engine::pass_keeps_bits),
    // so that a replica re-running the step alone gets the same output.
    bool exact = false;
    bool want_kv = false;       // audit 2: hand back the step's KV rows (ComputeDone::kv)
    int kv_from = 0;            // a replay: KV rows of [kv_from, pos) to load first
    std::vector<uint8_t> kv;    // (n_tokens 0: only load them)
    uint64_t charged = 0;       // bytes counted in its session's in_compute_bytes
};

struct ComputeDone {
    uint64_t session_id = 0;
    int pos = 0;
    int n_tokens = 0;
    std::vector<float> hidden;  // the span's output
    std::string error;          // non-empty when the step failed
    int64_t t_arrived = 0, t_started = 0, t_finished = 0;  // steady-clock ns
    std::vector<uint8_t> kv;    // the step's KV rows, when asked for
    uint64_t charged = 0;       // the job's
};

inline int64_t steady_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

class ComputeQueue {
public:
    ComputeQueue(std::shared_ptr<const engine::SpanWeights> weights, int threads, std::function<void(ComputeDone)> on_done,
                 int max_batch_tokens = 512);
    ~ComputeQueue();

    void push(ComputeJob job);
    // Runs `job` on the calling thread (the node's io thread) when nothing is queued or
    // running: a lone session's step has nothing to batch with, and running it where it
    // arrived saves two thread hand-offs per hop. Returns its result (on_done is not
    // called), or nullopt with the job untouched when the compute thread is busy.
    std::optional<ComputeDone> try_run_inline(ComputeJob& job);
    uint64_t batches() const { return batches_; }
    uint64_t tokens() const { return tokens_; }

private:
    void loop();
    // Why a job cannot run on its session's cache, or "" when it fits.
    static std::string misfit(const ComputeJob& j);
    // Whether `next` may join `batch` (of `tokens` tokens) without changing an exact job's bits.
    static bool keeps_bits(const std::vector<ComputeJob>& batch, int tokens, const ComputeJob& next);
    // One forward pass over `batch` (one sub-span, one job per session), by whoever
    // holds busy_; a result per job, failed ones included.
    std::vector<ComputeDone> run_pass(std::vector<ComputeJob>& batch);

    std::shared_ptr<const engine::SpanWeights> weights_;
    std::function<void(ComputeDone)> on_done_;
    int max_batch_tokens_;
    tensor::ThreadPool pool_;
    engine::SpanRunner runner_;  // one forward at a time: whoever holds busy_
    std::vector<float> hidden_;  // a batch's gathered rows (same owner)
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ComputeJob> queue_;
    bool busy_ = false;  // a forward is running (on the compute thread or inline)
    bool stop_ = false;
    std::atomic<uint64_t> batches_{0}, tokens_{0};
    std::thread thread_;
};

}  // namespace llmn::node
