// Per-dtype compute kernels, chosen once per process for the CPU it runs on.
//
// The scheme follows ggml: a weight row of type T is dotted with an activation
// row that was first converted to `vec_dot_type` (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1
// for Q4_1/Q5_1, Q8_K for the K-quants, F16 for F16, BF16 for BF16, F32 for F32),
// so quantized dot products stay in integers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/dtype.h"

namespace llmn::tensor {

struct KernelTable {
    // Type the activation row must be converted to before calling vec_dot.
    DType vec_dot_type = DType::f32;
    // Expands n elements (a multiple of the block size) of this type to f32.
    void (*dequantize_row)(const void* src, float* dst, int64_t n) = nullptr;
    // Converts n f32 values to this type; set for activation types
    // (F32, F16, BF16, Q8_0, Q8_1, Q8_K) and may be null for the others.
    void (*quantize_row)(const float* src, void* dst, int64_t n) = nullptr;
    // Dot product of n elements: a row of this type with a row of vec_dot_type.
    float (*vec_dot)(int64_t n, const void* row, const void* act) = nullptr;
    // Optional multi-row x multi-token product (null where vec_dot is the only
    // path): out[t * out_tok_stride + r] = vec_dot(n, w + r * w_row_stride,
    // act + t * act_row_stride) for r < n_rows, t < n_tok. Each weight block is
    // unpacked once per tile of tokens and each activation block reused across a
    // tile of rows; results equal vec_dot's up to float summation order.
    void (*gemm)(int64_t n, const void* w, size_t w_row_stride, int64_t n_rows, const void* act,
                 size_t act_row_stride, int64_t n_tok, float* out, size_t out_tok_stride) = nullptr;
};

enum class Isa { scalar, avx2, avx512 };

// The table for `type` on the ISA in use (best supported by CPU and OS, or the
// one forced by LLM_NODE_ISA=scalar|avx2|avx512). Types without kernels return
// a table whose function pointers are null.
const KernelTable& kernels(DType type);
// The scalar reference table, always available (tests compare against it).
const KernelTable& scalar_kernels(DType type);
// The table for one ISA, or nullptr when this CPU/OS cannot run it.
const KernelTable* isa_kernels(Isa isa, DType type);

// The ISA this thread's lookups use: an IsaScope's while one is alive, else the process's.
Isa active_isa();
std::string_view isa_name(Isa isa);
bool isa_supported(Isa isa);
// Bit (1 << Isa) for each ISA this CPU/OS can run.
uint8_t supported_isa_mask();

// While alive, kernels() and attention_f16() on this thread return `isa`'s
// kernels (which must be supported): a replica re-runs another node's step with
// that node's kernels, so that honest results agree to the bit (client/audit.h).
// Kernel pointers are chosen on the calling thread, so the pool's workers follow.
class IsaScope {
public:
    explicit IsaScope(Isa isa);
    ~IsaScope();
    IsaScope(const IsaScope&) = delete;
    IsaScope& operator=(const IsaScope&) = delete;

private:
    int prev_;
};

}  // namespace llmn::tensor
