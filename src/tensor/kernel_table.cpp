// Builds the per-ISA kernel tables once and picks the one this process uses.
#if LLMN_X86_KERNELS
#include <cpuid.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "tensor/kernels.h"
#include "tensor/kernels/kernels_impl.h"

namespace llmn::tensor {
namespace {

#if LLMN_X86_KERNELS
// XCR0 bits the OS must have enabled for the register state each ISA uses.
constexpr uint64_t kXcr0Ymm = 0x6;    // SSE + AVX state
constexpr uint64_t kXcr0Zmm = 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM

uint64_t read_xcr0() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & bit_OSXSAVE)) return 0;  // xgetbv itself would fault
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}

bool cpu_has_avx2() {
    __builtin_cpu_init();
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;  // clang 14 has no __builtin_cpu_supports("f16c")
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
    const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    return cpu && (read_xcr0() & kXcr0Ymm) == kXcr0Ymm;
}

bool cpu_has_avx512() {
    __builtin_cpu_init();
    const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
    return cpu && cpu_has_avx2() && (read_xcr0() & kXcr0Zmm) == kXcr0Zmm;
}
#else
// No x86 kernels in this build (another processor): scalar only.
bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }
#endif

struct Tables {
    KernelTable isa[3][detail::kTableSlots];
    bool supported[3] = {true, false, false};
    Isa active = Isa::scalar;
};

Isa choose_isa(const Tables& t) {
    Isa best = t.supported[2] ? Isa::avx512 : (t.supported[1] ? Isa::avx2 : Isa::scalar);
    const char* env = std::getenv("LLM_NODE_ISA");
    if (!env || !*env) return best;
    for (Isa want : {Isa::scalar, Isa::avx2, Isa::avx512}) {
        if (isa_name(want) != env) continue;
        if (t.supported[int(want)]) return want;
        std::fprintf(stderr, "llm-node: LLM_NODE_ISA=%s is not supported by this CPU/OS; using %s\n", env,
                     isa_name(best).data());
        return best;
    }
    std::fprintf(stderr, "llm-node: unknown LLM_NODE_ISA=%s (expected scalar, avx2 or avx512); using %s\n", env,
                 isa_name(best).data());
    return best;
}

const Tables& tables() {
    static const Tables t = [] {
        Tables r;
        KernelTable* scalar = r.isa[int(Isa::scalar)];
        detail::fill_scalar_basic(scalar);
        detail::fill_scalar_kquants(scalar);
        detail::fill_scalar_kquantize(scalar);
        r.supported[int(Isa::avx2)] = cpu_has_avx2();
        r.supported[int(Isa::avx512)] = cpu_has_avx512();
        for (int i = 1; i < 3; ++i) {
            std::memcpy(r.isa[i], scalar, sizeof r.isa[i]);
            if (!r.supported[i]) continue;
#if LLMN_X86_KERNELS
            detail::fill_avx2(r.isa[i]);
            if (i == int(Isa::avx512)) {
                detail::fill_avx512(r.isa[i]);
                detail::fill_avx512_gemm(r.isa[i]);
                detail::fill_avx512_gemm_f16(r.isa[i]);
                detail::fill_avx512_gemm_kquants(r.isa[i]);
            }
#endif
        }
        r.active = choose_isa(r);
        return r;
    }();
    return t;
}

// -1: the process's choice; else an IsaScope's.
thread_local int scoped_isa = -1;

Isa current_isa(const Tables& t) { return scoped_isa >= 0 ? Isa(scoped_isa) : t.active; }

const KernelTable& empty_table() {
    static const KernelTable empty{};
    return empty;
}

const KernelTable& lookup(const KernelTable* isa_tables, DType type) {
    const uint32_t id = uint32_t(type);
    return id < uint32_t(detail::kTableSlots) ? isa_tables[id] : empty_table();
}

}  // namespace

const KernelTable& kernels(DType type) {
    const Tables& t = tables();
    return lookup(t.isa[int(current_isa(t))], type);
}

const KernelTable& scalar_kernels(DType type) { return lookup(tables().isa[int(Isa::scalar)], type); }

const KernelTable* isa_kernels(Isa isa, DType type) {
    const Tables& t = tables();
    if (!t.supported[int(isa)]) return nullptr;
    return &lookup(t.isa[int(isa)], type);
}

Isa active_isa() { return current_isa(tables()); }

bool isa_supported(Isa isa) { return int(isa) >= 0 && int(isa) < 3 && tables().supported[int(isa)]; }

uint8_t supported_isa_mask() {
    uint8_t m = 0;
    for (int i = 0; i < 3; ++i)
        if (tables().supported[i]) m |= uint8_t(1u << i);
    return m;
}

IsaScope::IsaScope(Isa isa) : prev_(scoped_isa) {
    if (!isa_supported(isa)) throw std::invalid_argument("this CPU cannot run the " + std::string(isa_name(isa)) + " kernels");
    scoped_isa = int(isa);
}

IsaScope::~IsaScope() { scoped_isa = prev_; }

std::string_view isa_name(Isa isa) {
    switch (isa) {
        case Isa::scalar: return "scalar";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "unknown";
}

}  // namespace llmn::tensor
