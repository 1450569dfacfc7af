#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "tensor/kernels.h"
#include "tensor_test_util.h"

namespace llmn::tensor {
namespace {

TEST(KernelTable, ComputableTypesHaveAllKernelsOnEveryIsa) {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
        for (DType t : test::computable_types()) {
            const KernelTable* k = isa_kernels(isa, t);
            if (!k) continue;  // ISA not available here
            EXPECT_NE(k->vec_dot, nullptr) << isa_name(isa) << " " << dtype_name(t);
            EXPECT_NE(k->dequantize_row, nullptr) << isa_name(isa) << " " << dtype_name(t);
            EXPECT_NE(k->quantize_row, nullptr) << isa_name(isa) << " " << dtype_name(t);
        }
    }
}

TEST(KernelTable, VecDotTypesFollowGgml) {
    const std::map<DType, DType> expected = {
        {DType::f32, DType::f32},   {DType::f16, DType::f16},   {DType::bf16, DType::bf16},
        {DType::q4_0, DType::q8_0}, {DType::q5_0, DType::q8_0}, {DType::q8_0, DType::q8_0},
        {DType::q4_1, DType::q8_1}, {DType::q5_1, DType::q8_1}, {DType::q2_k, DType::q8_k},
        {DType::q3_k, DType::q8_k}, {DType::q4_k, DType::q8_k}, {DType::q5_k, DType::q8_k},
        {DType::q6_k, DType::q8_k},
    };
    for (const auto& [w, a] : expected) {
        EXPECT_EQ(kernels(w).vec_dot_type, a) << dtype_name(w);
        EXPECT_EQ(scalar_kernels(w).vec_dot_type, a) << dtype_name(w);
    }
}

TEST(KernelTable, ActivationTypesCanBeProduced) {
    for (DType t : test::activation_types()) EXPECT_NE(kernels(t).quantize_row, nullptr) << dtype_name(t);
    EXPECT_EQ(kernels(DType::q8_k).vec_dot, nullptr);
    EXPECT_EQ(kernels(DType::q8_1).vec_dot, nullptr);
}

TEST(KernelTable, UnknownTypesHaveNullKernels) {
    const KernelTable& k = kernels(DType(4));
    EXPECT_EQ(k.vec_dot, nullptr);
    EXPECT_EQ(k.dequantize_row, nullptr);
    EXPECT_EQ(kernels(DType(200)).vec_dot, nullptr);
}

TEST(KernelTable, ScalarIsAlwaysAvailableAndActiveIsaIsSupported) {
    EXPECT_NE(isa_kernels(Isa::scalar, DType::f32), nullptr);
    EXPECT_NE(isa_kernels(active_isa(), DType::q4_0), nullptr);
    EXPECT_EQ(&kernels(DType::q4_0), isa_kernels(active_isa(), DType::q4_0));
}

TEST(KernelTable, IsaNamesMatchTheOverrideSpelling) {
    EXPECT_EQ(isa_name(Isa::scalar), "scalar");
    EXPECT_EQ(isa_name(Isa::avx2), "avx2");
    EXPECT_EQ(isa_name(Isa::avx512), "avx512");
}

// The ISA is chosen once per process, so the override is checked in a fresh
// child process (gtest's "threadsafe" death-test style re-executes the binary).
TEST(KernelTableOverride, ScalarOverrideSelectsScalarTables) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            setenv("LLM_NODE_ISA", "scalar", 1);
            std::exit(active_isa() == Isa::scalar && &kernels(DType::q4_0) == &scalar_kernels(DType::q4_0) ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(KernelTableOverride, UnknownOverrideWarnsAndFallsBack) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            setenv("LLM_NODE_ISA", "sse9", 1);
            std::exit(kernels(DType::f32).vec_dot != nullptr ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "unknown LLM_NODE_ISA=sse9");
}

TEST(KernelTableOverride, UnsupportedOverrideWarnsAndFallsBack) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    if (isa_kernels(Isa::avx512, DType::f32)) GTEST_SKIP() << "AVX-512 is supported here: no fallback to check";
    EXPECT_EXIT(
        {
            setenv("LLM_NODE_ISA", "avx512", 1);
            std::exit(active_isa() != Isa::avx512 ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "not supported");
}

}  // namespace
}  // namespace llmn::tensor
