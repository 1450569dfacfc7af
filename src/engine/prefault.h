// Warming a model's weights into memory before the first token. The weights are
// memory-mapped, so without this the first forward pass pays for every page
// fault (reading the file from disk) and its time counts as prompt time; a node
// would also announce itself before it can answer at full speed.
#pragma once
#include <cstdint>
#include <functional>

#include "engine/model.h"

namespace llmn::engine {

// Which tensors prefault() touches.
struct PrefaultParts {
    int first_layer = 0;   // the blocks of layers [first_layer, last_layer)
    int last_layer = 0;
    bool stages = false;   // also every tensor outside the blocks: embeddings, final norm, LM head
};

// The total bytes prefault() would touch for `parts` (tensors sharing pages
// counted once, as whole pages).
uint64_t prefault_bytes(const Model& model, const PrefaultParts& parts);

// Advises the kernel that the chosen tensors will be needed (MADV_WILLNEED),
// then reads one byte of each of their pages so they are resident on return.
// `progress` (optional) is called with (done, total) bytes as it goes, ending
// with done == total; it runs on the calling thread. Layers outside
// [0, n_layer) are simply absent. Returns the bytes touched.
uint64_t prefault(const Model& model, const PrefaultParts& parts,
                  const std::function<void(uint64_t done, uint64_t total)>& progress = nullptr);

}  // namespace llmn::engine
