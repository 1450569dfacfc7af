#include "tensor/dtype.h"

#include <stdexcept>
#include <string>

namespace llmn::tensor {
namespace {

// One row per type we know; block layouts are GGUF's.
constexpr DTypeInfo kInfos[] = {
    {DType::f32, "F32", 1, 4, true},
    {DType::f16, "F16", 1, 2, true},
    {DType::q4_0, "Q4_0", 32, 18, true},
    {DType::q4_1, "Q4_1", 32, 20, true},
    {DType::q5_0, "Q5_0", 32, 22, true},
    {DType::q5_1, "Q5_1", 32, 24, true},
    {DType::q8_0, "Q8_0", 32, 34, true},
    {DType::q8_1, "Q8_1", 32, 36, false},
    {DType::q2_k, "Q2_K", 256, 84, true},
    {DType::q3_k, "Q3_K", 256, 110, true},
    {DType::q4_k, "Q4_K", 256, 144, true},
    {DType::q5_k, "Q5_K", 256, 176, true},
    {DType::q6_k, "Q6_K", 256, 210, true},
    {DType::q8_k, "Q8_K", 256, 292, false},
    {DType::bf16, "BF16", 1, 2, true},
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t raw_type) {
    for (const DTypeInfo& info : kInfos)
        if (uint32_t(info.type) == raw_type) return &info;
    return nullptr;
}

const DTypeInfo& dtype_info(DType type) {
    const DTypeInfo* info = dtype_info(uint32_t(type));
    if (!info) throw std::invalid_argument("unknown tensor type id " + std::to_string(uint32_t(type)));
    return *info;
}

std::string_view dtype_name(DType type) {
    const DTypeInfo* info = dtype_info(uint32_t(type));
    return info ? info->name : std::string_view("unknown");
}

size_t row_bytes(DType type, int64_t n) {
    const DTypeInfo& info = dtype_info(type);
    if (n < 0 || n % info.block_size != 0)
        throw std::invalid_argument("row of " + std::to_string(n) + " elements is not a multiple of " +
                                    std::string(info.name) + "'s block size " +
                                    std::to_string(info.block_size));
    return size_t(n / info.block_size) * info.type_size;
}

}  // namespace llmn::tensor
