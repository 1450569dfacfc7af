// For tests only: LLM_NODE_FAULT makes `serve` / `start` return wrong hidden
// states on purpose, so the client's audits (client/audit.h) can be tested
// against a real cheating node. Never set it on a node others use.
//
//   LLM_NODE_FAULT=noise=0.01       add Gaussian noise of 1% of each output row's norm
//   LLM_NODE_FAULT=identity         return the input unchanged (skip the layers)
//   LLM_NODE_FAULT=stale            return an earlier step's output (a node replaying old answers)
//   ...,every=100                   corrupt each step with probability 1/100 instead of always
//   ...,seed=7                      seed of the choice and the noise (default: random)
#pragma once
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace llmn::node {

class FaultHook {
public:
    enum class Mode { none, noise, identity, stale };

    // nullopt when `spec` is empty; throws std::invalid_argument on a bad spec.
    static std::optional<FaultHook> parse(const std::string& spec);
    static std::optional<FaultHook> from_env();  // LLM_NODE_FAULT

    // Whether this step is one to corrupt (every step, or 1 in `every`).
    bool strike();
    Mode mode() const { return mode_; }
    // Adds noise of `relative` x each row's L2 norm to rows [n_rows, n_cols].
    void add_noise(float* rows, int n_rows, int n_cols);
    // Mode stale: swaps `rows` with what the previous call gave (same size), so the caller sends that.
    void swap_stale(std::vector<float>& rows);
    std::string describe() const;

private:
    Mode mode_ = Mode::none;
    double relative_ = 0;
    uint32_t every_ = 1;
    std::mt19937_64 rng_;
    std::vector<float> stale_;
};

}  // namespace llmn::node
