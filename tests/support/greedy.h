// Greedy decoding through any engine::Session (local, remote, circuit): the yardstick of
// the multi-process tests, which expect the same tokens through nodes as in one process.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/local_session.h"
#include "tensor/thread_pool.h"

namespace llmn::testing {

inline int32_t argmax(const std::vector<float>& v) { return int32_t(std::max_element(v.begin(), v.end()) - v.begin()); }

// n greedy tokens after `prompt`. Optionally the logits after the prompt, and the longest
// single-token step in seconds (taken as the max with *longest_step).
inline std::vector<int32_t> greedy(engine::Session& s, const std::vector<int32_t>& prompt, int n,
                                   std::vector<float>* first_logits = nullptr, double* longest_step = nullptr) {
    std::vector<float> logits;
    s.eval(prompt, logits);
    if (first_logits) *first_logits = logits;
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(argmax(logits));
        if (i + 1 == n) break;
        const auto t0 = std::chrono::steady_clock::now();
        s.eval({out.back()}, logits);
        if (longest_step)
            *longest_step = std::max(*longest_step, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return out;
}

// The same in one process (the model loaded anew, 1 thread).
inline std::vector<int32_t> local_greedy(const std::string& model, const std::vector<int32_t>& prompt, int n,
                                         std::vector<float>* first_logits = nullptr, int n_ctx = 128) {
    tensor::ThreadPool pool(1);
    engine::SessionConfig sc;
    sc.n_ctx = n_ctx;
    engine::LocalSession s(engine::Model::load(model), sc, pool);
    return greedy(s, prompt, n, first_logits);
}

}  // namespace llmn::testing
