#include "swarm/hardware_probe.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/layer_span.h"
#include "tensor/thread_pool.h"

namespace llmn::swarm {
namespace {

uint64_t read_u64_file(const char* path) {
    std::ifstream in(path);
    std::string s;
    if (!(in >> s) || s == "max") return UINT64_MAX;
    try {
        return std::stoull(s);
    } catch (...) {
        return UINT64_MAX;
    }
}

}  // namespace

Hardware probe_hardware() {
    Hardware h;
    h.cores = int(std::max(1u, std::thread::hardware_concurrency()));
    uint64_t avail = 0;
    std::ifstream mi("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (mi >> key >> kb >> unit)
        if (key == "MemAvailable:") avail = kb * 1024;
    // cgroup v2, then v1: a container may have less than the machine.
    const uint64_t limit2 = read_u64_file("/sys/fs/cgroup/memory.max"), used2 = read_u64_file("/sys/fs/cgroup/memory.current");
    if (limit2 != UINT64_MAX && used2 != UINT64_MAX && limit2 > used2) avail = std::min(avail, limit2 - used2);
    const uint64_t limit1 = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    const uint64_t used1 = read_u64_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    if (limit1 != UINT64_MAX && used1 != UINT64_MAX && limit1 > used1 && limit1 < (uint64_t(1) << 60)) avail = std::min(avail, limit1 - used1);
    h.mem_available = avail;
    return h;
}

double measure_seconds_per_layer(std::shared_ptr<const engine::Model> model, int threads, int layer) {
    tensor::ThreadPool pool(threads);
    engine::LayerSpan span(model, layer, layer + 1, 16);
    const int d = model->config().n_embd;
    std::vector<float> h(d);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.f, 1.f);
    std::vector<double> times;
    for (int rep = 0; rep < 7; ++rep) {
        for (float& v : h) v = dist(rng);
        const auto t0 = std::chrono::steady_clock::now();
        span.forward(h.data(), 1, span.n_past(), pool);
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    pool.park();
    std::sort(times.begin() + 1, times.end());  // the first run pages the layer in
    return times[1 + (times.size() - 1) / 2];
}

}  // namespace llmn::swarm
