// Read bandwidth probe: 2 threads stream-sum a 1 GiB buffer (PERF.md's decode
// roofline: tokens/s <= bandwidth / weight bytes). Prints the median of 7 runs
// and the spread. Usage: bandwidth_bench [threads] [MiB]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tensor/thread_pool.h"

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const size_t mib = argc > 2 ? size_t(std::atoll(argv[2])) : 1024;
    const size_t words = mib * 1024 * 1024 / sizeof(uint64_t);
    std::vector<uint64_t> buf(words);
    llmn::tensor::ThreadPool pool(threads);
    // Page the buffer in with the threads that will read it.
    pool.parallel_for(int64_t(words), [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) buf[size_t(i)] = uint64_t(i) * 0x9E3779B97F4A7C15ULL;
    });
    std::vector<double> gbs;
    uint64_t checksum = 0;
    for (int run = 0; run < 8; ++run) {
        std::vector<uint64_t> partial(size_t(threads), 0);
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(int64_t(words), [&](int64_t b, int64_t e, int t) {
            uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t i = b;
            for (; i + 4 <= e; i += 4) {
                s0 += buf[size_t(i)];
                s1 += buf[size_t(i + 1)];
                s2 += buf[size_t(i + 2)];
                s3 += buf[size_t(i + 3)];
            }
            for (; i < e; ++i) s0 += buf[size_t(i)];
            partial[size_t(t)] = s0 + s1 + s2 + s3;
        });
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (uint64_t p : partial) checksum += p;
        if (run > 0) gbs.push_back(double(words * sizeof(uint64_t)) / sec / 1e9);  // run 0 is warm-up
    }
    std::sort(gbs.begin(), gbs.end());
    std::printf("read bandwidth, %d threads, %zu MiB: median %.1f GB/s (min %.1f, max %.1f, %zu runs) [checksum %llu]\n",
                threads, mib, gbs[gbs.size() / 2], gbs.front(), gbs.back(), gbs.size(),
                static_cast<unsigned long long>(checksum % 1000));
    return 0;
}
