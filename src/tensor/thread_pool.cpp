#include "tensor/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace llmn::tensor {
namespace {

// Spin iterations (each one pause) before a thread sleeps: a few tens of
// microseconds, long enough to bridge back-to-back kernel calls.
constexpr int kSpinIterations = 20000;

// One spin step. Every so often it yields the core, so a pool with more
// threads than cores still lets the thread being waited for run.
inline void cpu_relax(int i) {
    if ((i & 1023) == 1023) {
        std::this_thread::yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = int(std::thread::hardware_concurrency());
    n_threads_ = n_threads < 1 ? 1 : n_threads;
    workers_.reserve(size_t(n_threads_ - 1));
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_cv_.notify_all();
    for (std::thread& w : workers_) w.join();
}

void ThreadPool::run_chunk(int thread) {
    const int64_t begin = job_n_ * thread / n_threads_;
    const int64_t end = job_n_ * (thread + 1) / n_threads_;
    if (begin < end) (*job_)(begin, end, thread);
}

void ThreadPool::worker_loop(int thread) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int i = 0; gen == seen && i < kSpinIterations && !parked_.load(std::memory_order_relaxed); ++i) {
            cpu_relax(i);
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mu_);
            const uint64_t wakes = wakes_.load(std::memory_order_relaxed);
            start_cv_.wait(lock, [&] {
                return generation_.load(std::memory_order_acquire) != seen || wakes_.load(std::memory_order_relaxed) != wakes;
            });
            gen = generation_.load(std::memory_order_acquire);
            if (gen == seen) continue;  // woken ahead of a job: spin for it
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        run_chunk(thread);
        // seq_cst on pending_/waiting_: the caller stores waiting_ then reads
        // pending_, we do the reverse, and one of us must see the other's write.
        if (pending_.fetch_sub(1) == 1 && waiting_.load()) {
            std::lock_guard<std::mutex> lock(mu_);
            done_cv_.notify_one();
        }
    }
}

void ThreadPool::wake() {
    if (n_threads_ == 1) return;
    parked_.store(false, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mu_);
        wakes_.fetch_add(1, std::memory_order_relaxed);
    }
    start_cv_.notify_all();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) return;
    if (n_threads_ == 1 || n == 1) {
        fn(0, n, 0);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    parked_.store(false, std::memory_order_relaxed);
    job_ = &fn;
    job_n_ = n;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    waiting_.store(false, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mu_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_cv_.notify_all();

    struct WaitForWorkers {
        ThreadPool* pool;
        ~WaitForWorkers() {
            for (int i = 0; pool->pending_.load(std::memory_order_acquire) != 0 && i < kSpinIterations; ++i)
                cpu_relax(i);
            if (pool->pending_.load(std::memory_order_acquire) == 0) return;
            std::unique_lock<std::mutex> lock(pool->mu_);
            pool->waiting_.store(true);
            pool->done_cv_.wait(lock, [&] { return pool->pending_.load() == 0; });
        }
    } wait{this};
    run_chunk(0);
}

}  // namespace llmn::tensor
