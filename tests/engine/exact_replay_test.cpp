// What verification by replicas relies on (client/audit.h): a span step run
// again with the same kernels and the same shape gives the same bits, whatever
// the thread count and whatever small steps of other sessions shared its pass,
// and a thread can borrow another ISA's kernels (tensor::IsaScope).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <thread>

#include "engine/layer_span.h"
#include "engine/ops.h"
#include "support/random_model.h"
#include "support/test_support.h"
#include "tensor/kernels.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {
namespace {

struct Case {
    tensor::DType type;
    const char* name;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }  // test names without addresses

std::vector<float> input_rows(int n, int d, float phase) {
    std::vector<float> h(size_t(n) * d);
    for (size_t i = 0; i < h.size(); ++i) h[i] = std::sin(float(i) * 0.173f + phase) * 1.5f;
    return h;
}

// Prefills `prefix` tokens, then runs a `step`-token step; returns that step's output.
std::vector<float> run_alone(const std::shared_ptr<const SpanWeights>& w, int prefix, int step, int threads) {
    const int d = w->model().config().n_embd;
    tensor::ThreadPool pool(threads);
    SpanRunner r(w);
    KvCache c(*w, 32);
    std::vector<float> pre = input_rows(prefix, d, 0.0f), s = input_rows(step, d, 1.0f);
    r.forward(pre.data(), {SeqSlice{&c, 0, prefix}}, pool);
    r.forward(s.data(), {SeqSlice{&c, prefix, step}}, pool);
    return s;
}

bool same_bits(const std::vector<float>& a, const float* b, size_t n) { return a.size() == n && std::memcmp(a.data(), b, n * sizeof(float)) == 0; }

class ExactReplay : public ::testing::TestWithParam<Case> {
protected:
    std::shared_ptr<const SpanWeights> weights() {
        testing::RandomModelSpec spec;
        spec.arch = "llama";
        spec.n_layer = 2;
        spec.n_embd = 256;  // several 64-row blocks per matrix, K-quant blocks fit
        spec.n_head = 4;
        spec.n_head_kv = 2;
        spec.n_ff = 512;
        spec.weight_type = GetParam().type;
        auto m = Model::load(testing::write_random_model(spec, testing::temp_path(std::string("replay-") + GetParam().name + ".gguf")));
        return std::make_shared<const SpanWeights>(m, 0, 2);
    }
};

TEST_P(ExactReplay, ThreadCountDoesNotChangeAStepsBits) {
    auto w = weights();
    for (tensor::Isa isa : {tensor::Isa::scalar, tensor::Isa::avx2, tensor::Isa::avx512}) {
        if (!tensor::isa_supported(isa)) continue;
        tensor::IsaScope scope(isa);
        for (int step : {1, 3, 9}) {
            const std::vector<float> one = run_alone(w, 5, step, 1);
            for (int threads : {2, 3}) {
                const std::vector<float> many = run_alone(w, 5, step, threads);
                EXPECT_TRUE(same_bits(one, many.data(), many.size()))
                    << tensor::isa_name(isa) << ", " << step << " tokens, " << threads << " threads";
            }
        }
    }
}

TEST_P(ExactReplay, SmallPassesWithOtherSessionsKeepAStepsBits) {
    auto w = weights();
    const int d = w->model().config().n_embd;
    for (tensor::Isa isa : {tensor::Isa::scalar, tensor::Isa::avx2, tensor::Isa::avx512}) {
        if (!tensor::isa_supported(isa)) continue;
        tensor::IsaScope scope(isa);
        const std::vector<float> alone = run_alone(w, 5, 1, 2);
        // The same decode step beside other sessions' steps, as long as pass_keeps_bits says so.
        for (int others : {1, 2, 5}) {
            ASSERT_TRUE(pass_keeps_bits(1, 1 + others));
            tensor::ThreadPool pool(2);
            SpanRunner r(w);
            KvCache mine(*w, 32), theirs(*w, 32);
            std::vector<float> pre = input_rows(5, d, 0.0f), pre2 = input_rows(7, d, 2.0f);
            r.forward(pre.data(), {SeqSlice{&mine, 0, 5}}, pool);
            r.forward(pre2.data(), {SeqSlice{&theirs, 0, 7}}, pool);
            std::vector<float> pass = input_rows(1, d, 1.0f), extra = input_rows(others, d, 3.0f);
            pass.insert(pass.end(), extra.begin(), extra.end());
            r.forward(pass.data(), {SeqSlice{&mine, 5, 1}, SeqSlice{&theirs, 7, others}}, pool);
            EXPECT_TRUE(same_bits(alone, pass.data(), size_t(d))) << tensor::isa_name(isa) << ", beside " << others << " tokens";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, ExactReplay,
                         ::testing::Values(Case{tensor::DType::f16, "f16"}, Case{tensor::DType::q4_0, "q4_0"}, Case{tensor::DType::q8_0, "q8_0"},
                                           Case{tensor::DType::q4_k, "q4_k"}, Case{tensor::DType::q6_k, "q6_k"}),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(IsaScope, BorrowsAnotherIsaForThisThreadOnly) {
    const tensor::Isa process = tensor::active_isa();
    EXPECT_TRUE(tensor::supported_isa_mask() & (1u << int(tensor::Isa::scalar)));
    {
        tensor::IsaScope scalar(tensor::Isa::scalar);
        EXPECT_EQ(tensor::active_isa(), tensor::Isa::scalar);
        EXPECT_EQ(&tensor::kernels(tensor::DType::q4_0), &tensor::scalar_kernels(tensor::DType::q4_0));
        tensor::Isa seen = process;
        std::thread([&] { seen = tensor::active_isa(); }).join();
        EXPECT_EQ(seen, process);
    }
    EXPECT_EQ(tensor::active_isa(), process);
    for (tensor::Isa isa : {tensor::Isa::avx2, tensor::Isa::avx512}) {
        if (!tensor::isa_supported(isa)) EXPECT_THROW(tensor::IsaScope s(isa), std::invalid_argument);
    }
}

}  // namespace
}  // namespace llmn::engine

namespace llmn::engine {
namespace {

// A replica takes over a hop's history from its KV rows (KvCache::copy_rows /
// load_rows) and runs the next step: the same bits as the hop.
TEST(KvRows, AReplicaLoadedWithTheHopsRowsRunsTheNextStepToTheBit) {
    testing::RandomModelSpec spec;
    spec.n_layer = 3;
    spec.weight_type = tensor::DType::q8_0;
    auto m = Model::load(testing::write_random_model(spec, testing::temp_path("kv-rows.gguf")));
    auto w = std::make_shared<const SpanWeights>(m, 1, 3);
    const int d = m->config().n_embd;
    tensor::ThreadPool pool(2);
    SpanRunner hop_runner(w), replica_runner(w);
    KvCache hop(*w, 32), replica(*w, 32);
    std::vector<float> prompt = input_rows(6, d, 0.0f), step = input_rows(1, d, 1.0f);
    hop_runner.forward(prompt.data(), {SeqSlice{&hop, 0, 6}}, pool);
    std::vector<float> next = input_rows(1, d, 2.0f);
    hop_runner.forward(next.data(), {SeqSlice{&hop, 6, 1}}, pool);
    // The replica gets positions [0, 7) in two pieces, as receipts bring them.
    std::vector<uint8_t> first = hop.copy_rows(0, 6), second = hop.copy_rows(6, 1);
    EXPECT_EQ(first.size(), hop.rows_bytes(6));
    std::vector<uint8_t> both = first;  // consecutive steps' rows concatenate
    both.insert(both.end(), second.begin(), second.end());
    replica.load_rows(0, 7, both.data(), both.size());
    EXPECT_EQ(replica.n_past(), 7);
    EXPECT_EQ(replica.copy_rows(0, 7), hop.copy_rows(0, 7));
    std::vector<float> at_hop = step, at_replica = step;
    hop_runner.forward(at_hop.data(), {SeqSlice{&hop, 7, 1}}, pool);
    replica_runner.forward(at_replica.data(), {SeqSlice{&replica, 7, 1}}, pool);
    EXPECT_EQ(at_hop, at_replica);
    EXPECT_EQ(replica.copy_rows(7, 1), hop.copy_rows(7, 1));
    EXPECT_THROW(replica.load_rows(9, 1, second.data(), second.size()), std::out_of_range);  // a gap
    EXPECT_THROW(replica.load_rows(0, 2, second.data(), second.size()), std::out_of_range);  // wrong size
}

}  // namespace
}  // namespace llmn::engine
