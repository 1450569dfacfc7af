// Tensor element types as GGUF numbers them, and their block layouts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace llmn::tensor {

// Values are GGUF's (ggml_type) type ids and are frozen by the file format.
enum class DType : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    bf16 = 30,
};

// Layout of one type: `block_size` elements are stored in `type_size` bytes.
// `computable` is true when the engine has kernels for it (dequantize + dot).
struct DTypeInfo {
    DType type;
    std::string_view name;  // llama.cpp's spelling: "F32", "Q4_K", ...
    uint32_t block_size;
    uint32_t type_size;
    bool computable;
};

// The layout of a raw GGUF type id, or nullptr when the id is unknown to us.
const DTypeInfo* dtype_info(uint32_t raw_type);
const DTypeInfo& dtype_info(DType type);
std::string_view dtype_name(DType type);

// Bytes of one row of `n` elements; n must be a multiple of the block size.
size_t row_bytes(DType type, int64_t n);

}  // namespace llmn::tensor
