#include "engine/prefault.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace llmn::engine {
namespace {

// A run of tensor bytes [begin, end); tensors that share a page are merged so
// that each page is counted and touched once.
struct ByteRange {
    uintptr_t begin, end;
};

uintptr_t page_size() {
    static const uintptr_t p = uintptr_t(sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096);
    return p;
}

bool wanted(const model::TensorInfo& t, const PrefaultParts& parts) {
    if (t.name.rfind("blk.", 0) != 0) return parts.stages;
    const int il = std::atoi(t.name.c_str() + 4);
    return il >= parts.first_layer && il < parts.last_layer;
}

std::vector<ByteRange> ranges(const Model& model, const PrefaultParts& parts) {
    std::vector<ByteRange> r;
    for (const model::TensorInfo& t : model.file().tensors())
        if (t.data && t.nbytes > 0 && wanted(t, parts)) r.push_back({uintptr_t(t.data), uintptr_t(t.data) + t.nbytes});
    std::sort(r.begin(), r.end(), [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
    const uintptr_t page = page_size();
    std::vector<ByteRange> merged;
    for (const ByteRange& x : r) {
        // The gap between two tensors is alignment padding inside the same
        // buffer, so merging across it reads nothing outside the file's bytes.
        if (!merged.empty() && x.begin <= ((merged.back().end + page - 1) & ~(page - 1)))
            merged.back().end = std::max(merged.back().end, x.end);
        else
            merged.push_back(x);
    }
    return merged;
}

}  // namespace

uint64_t prefault_bytes(const Model& model, const PrefaultParts& parts) {
    uint64_t n = 0;
    for (const ByteRange& r : ranges(model, parts)) n += r.end - r.begin;
    return n;
}

uint64_t prefault(const Model& model, const PrefaultParts& parts, const std::function<void(uint64_t, uint64_t)>& progress) {
    const std::vector<ByteRange> rs = ranges(model, parts);
    const uintptr_t page = page_size();
    uint64_t total = 0;
    for (const ByteRange& r : rs) {
        total += r.end - r.begin;
        // Start the reads now (asynchronously, in large requests); the loop
        // below then mostly finds the pages already on their way.
        const uintptr_t a = r.begin & ~(page - 1);
        madvise(reinterpret_cast<void*>(a), r.end - a, MADV_WILLNEED);
    }
    constexpr uint64_t kReportEvery = 4u << 20;
    uint64_t done = 0, reported = 0;
    for (const ByteRange& r : rs) {
        // One byte per page, starting at the range's first byte and then at each
        // page boundary, so every read stays inside the tensor bytes.
        for (uintptr_t p = r.begin; p < r.end; p = (p & ~(page - 1)) + page) {
            (void)*reinterpret_cast<const volatile uint8_t*>(p);  // a volatile read is never elided
            const uintptr_t next = std::min(r.end, (p & ~(page - 1)) + page);
            done += next - p;
            if (progress && done - reported >= kReportEvery) {
                progress(done, total);
                reported = done;
            }
        }
    }
    if (progress) progress(total, total);
    return total;
}

}  // namespace llmn::engine
