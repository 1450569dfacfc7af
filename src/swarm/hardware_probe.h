// What this machine can give the swarm: usable memory (RAM and the cgroup
// limit), cores, and the measured speed of this model's layers here.
#pragma once
#include <cstdint>
#include <memory>

namespace llmn::engine {
class Model;
}

namespace llmn::swarm {

struct Hardware {
    uint64_t mem_available = 0;  // bytes: min(MemAvailable, cgroup limit - usage)
    int cores = 1;
};

Hardware probe_hardware();

// Seconds one decode step spends in one layer of `model` on this machine
// (median of a few timed runs of layer `layer` on random hidden states, `threads` threads).
double measure_seconds_per_layer(std::shared_ptr<const engine::Model> model, int threads, int layer = 0);

}  // namespace llmn::swarm
