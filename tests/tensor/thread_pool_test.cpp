#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tensor/thread_pool.h"

namespace llmn::tensor {
namespace {

TEST(ThreadPool, ZeroMeansHardwareConcurrency) {
    ThreadPool pool(0);
    EXPECT_GE(pool.size(), 1);
    EXPECT_EQ(ThreadPool(3).size(), 3);
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
    for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        for (int64_t n : {1, 2, 3, 7, 100, 1001}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
                for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
            });
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "n=" << n << " i=" << i;
        }
    }
}

TEST(ThreadPool, ChunksAreContiguousAndChunkZeroRunsOnCaller) {
    ThreadPool pool(4);
    std::vector<std::pair<int64_t, int64_t>> ranges(4, {-1, -1});
    std::thread::id chunk0_thread;
    pool.parallel_for(10, [&](int64_t begin, int64_t end, int thread) {
        ranges[size_t(thread)] = {begin, end};
        if (thread == 0) chunk0_thread = std::this_thread::get_id();
    });
    EXPECT_EQ(chunk0_thread, std::this_thread::get_id());
    int64_t next = 0;
    for (const auto& [begin, end] : ranges) {
        EXPECT_EQ(begin, next);
        EXPECT_GE(end - begin, 2);
        next = end;
    }
    EXPECT_EQ(next, 10);
}

TEST(ThreadPool, SkipsEmptyChunksAndEmptyRanges) {
    ThreadPool pool(4);
    std::atomic<int> calls{0};
    pool.parallel_for(0, [&](int64_t, int64_t, int) { calls++; });
    EXPECT_EQ(calls.load(), 0);
    pool.parallel_for(2, [&](int64_t begin, int64_t end, int) {
        EXPECT_LT(begin, end);
        calls++;
    });
    EXPECT_EQ(calls.load(), 2);
}

TEST(ThreadPool, SurvivesManyRepeatedCalls) {
    ThreadPool pool(3);
    std::atomic<int64_t> total{0};
    for (int round = 0; round < 20000; ++round)
        pool.parallel_for(64, [&](int64_t begin, int64_t end, int) { total.fetch_add(end - begin); });
    EXPECT_EQ(total.load(), 20000 * 64);
}

TEST(ThreadPool, WorksAfterWorkersFallAsleep) {
    ThreadPool pool(2);
    std::atomic<int64_t> total{0};
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        pool.parallel_for(10, [&](int64_t begin, int64_t end, int) { total.fetch_add(end - begin); });
    }
    EXPECT_EQ(total.load(), 30);
}

TEST(ThreadPool, CallsFromSeveralThreadsAreSerialized) {
    ThreadPool pool(2);
    std::atomic<int64_t> total{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 3; ++c)
        callers.emplace_back([&] {
            for (int r = 0; r < 500; ++r)
                pool.parallel_for(8, [&](int64_t begin, int64_t end, int) { total.fetch_add(end - begin); });
        });
    for (auto& t : callers) t.join();
    EXPECT_EQ(total.load(), 3 * 500 * 8);
}

TEST(ThreadPool, ExceptionOnCallerChunkPropagatesAfterOthersFinish) {
    ThreadPool pool(2);
    std::atomic<int> worker_done{0};
    EXPECT_THROW(pool.parallel_for(2,
                                   [&](int64_t, int64_t, int thread) {
                                       if (thread == 0) throw std::runtime_error("chunk 0");
                                       worker_done++;
                                   }),
                 std::runtime_error);
    EXPECT_EQ(worker_done.load(), 1);
    std::atomic<int> calls{0};
    pool.parallel_for(2, [&](int64_t, int64_t, int) { calls++; });
    EXPECT_EQ(calls.load(), 2);
}


// wake() from another thread while the workers sleep, with or without a job
// following, never loses or duplicates a chunk.
TEST(ThreadPool, WakeAheadOfAJobKeepsEveryChunkExactlyOnce) {
    ThreadPool pool(3);
    for (int round = 0; round < 50; ++round) {
        pool.park();
        std::this_thread::sleep_for(std::chrono::microseconds(round % 5 == 0 ? 2000 : 10));
        std::thread waker([&] { pool.wake(); });
        std::vector<std::atomic<int>> hits(97);
        pool.parallel_for(97, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
        });
        waker.join();
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
    pool.wake();  // a wake with no job after it: the workers spin, then sleep again
}

}  // namespace
}  // namespace llmn::tensor
