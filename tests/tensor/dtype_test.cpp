#include <gtest/gtest.h>

#include <stdexcept>

#include "tensor/dtype.h"
#include "tensor/quant_blocks.h"

namespace llmn::tensor {
namespace {

struct Layout {
    DType type;
    const char* name;
    uint32_t block_size;
    uint32_t type_size;
    bool computable;
};

TEST(DType, LayoutsMatchGgufBlockSizes) {
    const Layout expected[] = {
        {DType::f32, "F32", 1, 4, true},       {DType::f16, "F16", 1, 2, true},
        {DType::bf16, "BF16", 1, 2, true},     {DType::q4_0, "Q4_0", 32, 18, true},
        {DType::q4_1, "Q4_1", 32, 20, true},   {DType::q5_0, "Q5_0", 32, 22, true},
        {DType::q5_1, "Q5_1", 32, 24, true},   {DType::q8_0, "Q8_0", 32, 34, true},
        {DType::q8_1, "Q8_1", 32, 36, false},  {DType::q2_k, "Q2_K", 256, 84, true},
        {DType::q3_k, "Q3_K", 256, 110, true}, {DType::q4_k, "Q4_K", 256, 144, true},
        {DType::q5_k, "Q5_K", 256, 176, true}, {DType::q6_k, "Q6_K", 256, 210, true},
        {DType::q8_k, "Q8_K", 256, 292, false},
    };
    for (const Layout& e : expected) {
        const DTypeInfo& info = dtype_info(e.type);
        EXPECT_EQ(info.type, e.type);
        EXPECT_EQ(info.name, e.name);
        EXPECT_EQ(info.block_size, e.block_size) << e.name;
        EXPECT_EQ(info.type_size, e.type_size) << e.name;
        EXPECT_EQ(info.computable, e.computable) << e.name;
        EXPECT_EQ(dtype_name(e.type), e.name);
        ASSERT_NE(dtype_info(uint32_t(e.type)), nullptr);
    }
}

TEST(DType, BlockStructSizesMatchTypeSizes) {
    EXPECT_EQ(sizeof(BlockQ4_0), dtype_info(DType::q4_0).type_size);
    EXPECT_EQ(sizeof(BlockQ8_K), dtype_info(DType::q8_k).type_size);
    EXPECT_EQ(sizeof(BlockQ6_K), dtype_info(DType::q6_k).type_size);
}

TEST(DType, UnknownRawIdsReturnNull) {
    EXPECT_EQ(dtype_info(4u), nullptr);   // removed Q4_2
    EXPECT_EQ(dtype_info(5u), nullptr);   // removed Q4_3
    EXPECT_EQ(dtype_info(16u), nullptr);  // IQ2_XXS: not supported
    EXPECT_EQ(dtype_info(1000u), nullptr);
    EXPECT_THROW(dtype_info(DType(16)), std::invalid_argument);
}

TEST(DType, RowBytesCountsWholeBlocks) {
    EXPECT_EQ(row_bytes(DType::f32, 4096), 16384u);
    EXPECT_EQ(row_bytes(DType::f16, 7), 14u);
    EXPECT_EQ(row_bytes(DType::q4_0, 4096), 4096u / 32 * 18);
    EXPECT_EQ(row_bytes(DType::q6_k, 4096), 4096u / 256 * 210);
    EXPECT_EQ(row_bytes(DType::q8_k, 0), 0u);
}

TEST(DType, RowBytesRejectsPartialBlocks) {
    EXPECT_THROW(row_bytes(DType::q4_0, 33), std::invalid_argument);
    EXPECT_THROW(row_bytes(DType::q4_k, 128), std::invalid_argument);
}

}  // namespace
}  // namespace llmn::tensor
