// A small persistent thread pool for data-parallel kernels (matvec rows, heads).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmn::tensor {

// Keeps size() - 1 worker threads alive for the pool's lifetime; the calling
// thread is the size()-th. parallel_for is meant to be called thousands of
// times per second: workers spin briefly after each job before they sleep on a
// condition variable, and no thread is created per call.
class ThreadPool {
public:
    // n_threads <= 0 means std::thread::hardware_concurrency() (at least 1).
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Number of threads that run a parallel_for, the caller included.
    int size() const { return n_threads_; }

    // Splits [0, n) into size() contiguous chunks (as even as possible) and runs
    // fn(begin, end, thread) for each non-empty chunk; chunk 0 runs on the
    // calling thread. Returns when every chunk has finished. Calls from
    // different threads are serialized; fn must not call parallel_for on the
    // same pool. If fn throws on any thread, the process terminates for worker
    // chunks and the exception propagates for chunk 0 (after the others finish).
    void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

    // Hint that no work follows soon (a node waiting for the network): spinning
    // workers go to sleep at once instead of taking a core from other processes.
    // The next parallel_for wakes them as usual.
    void park() { parked_.store(true, std::memory_order_relaxed); }

    // Hint that a parallel_for is coming (a step has just arrived): sleeping
    // workers wake now and spin, so their wake-up overlaps the caller's own
    // instead of following it. Safe from any thread.
    void wake();

private:
    void worker_loop(int thread);
    void run_chunk(int thread);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;
    std::mutex call_mu_;  // serializes parallel_for callers

    std::mutex mu_;
    std::condition_variable start_cv_;
    std::condition_variable done_cv_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> waiting_{false};  // the caller sleeps on done_cv_
    std::atomic<bool> stop_{false};
    std::atomic<bool> parked_{false};
    std::atomic<uint64_t> wakes_{0};

    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_n_ = 0;
};

}  // namespace llmn::tensor
