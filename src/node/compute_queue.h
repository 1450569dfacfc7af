// The node's compute thread: takes span steps of many sessions, batches the
// ready ones (at most one step per session per pass) into one forward pass, and
// hands each result to a callback (which posts it to the io thread).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
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
};

struct ComputeDone {
    uint64_t session_id = 0;
    int pos = 0;
    int n_tokens = 0;
    std::vector<float> hidden;  // the span's output
    std::string error;          // non-empty when the step failed
};

class ComputeQueue {
public:
    ComputeQueue(std::shared_ptr<const engine::SpanWeights> weights, int threads, std::function<void(ComputeDone)> on_done,
                 int max_batch_tokens = 512);
    ~ComputeQueue();

    void push(ComputeJob job);
    uint64_t batches() const { return batches_; }
    uint64_t tokens() const { return tokens_; }

private:
    void loop();

    std::shared_ptr<const engine::SpanWeights> weights_;
    std::function<void(ComputeDone)> on_done_;
    int max_batch_tokens_;
    tensor::ThreadPool pool_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ComputeJob> queue_;
    bool stop_ = false;
    std::atomic<uint64_t> batches_{0}, tokens_{0};
    std::thread thread_;
};

}  // namespace llmn::node
