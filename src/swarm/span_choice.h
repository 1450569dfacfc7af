// Which layers a node should serve: the window where the swarm is weakest.
#pragma once
#include <cstdint>
#include <vector>

namespace llmn::swarm {

struct SpanRecord {
    int span_start = 0, span_end = 0;
    double tokens_per_s = 0;  // throughput the node measured for its span
};

// Throughput covering each layer: the sum over records of their tokens/s.
std::vector<double> layer_coverage(const std::vector<SpanRecord>& records, int n_layer);

// The start of the k-layer window to serve: the one whose weakest layer has the
// least throughput (uncovered layers first), ties broken by the least total
// throughput, then the lowest start. k is clamped to [1, n_layer].
int choose_span_start(const std::vector<double>& coverage, int k);

// Hysteresis, on the coverage of the *other* nodes: move from the current
// window to `best_start` when that leaves fewer layers uncovered, or (as many
// uncovered) when the best window's weakest layer has less than `ratio` of
// the throughput of the current window's weakest layer without us. So nodes
// fill gaps left by a node that went away but do not oscillate.
bool should_move(const std::vector<double>& others, int current_start, int k, double own_tokens_per_s, int best_start,
                 double ratio = 0.5);

// Layers that fit: how many of n_layer (each `layer_bytes`, plus `kv_bytes_per_layer`
// of cache) fit in `budget_bytes` after `reserve_bytes`; at least 1 when any fits, else 0.
int layers_that_fit(uint64_t budget_bytes, uint64_t reserve_bytes, uint64_t layer_bytes, uint64_t kv_bytes_per_layer, int n_layer);

}  // namespace llmn::swarm
