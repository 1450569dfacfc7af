// vec_dot throughput per weight type and ISA over a set of 4096-wide rows.
//
// Two working sets per type: "l2" (256 KiB of weights, compute bound) and
// "dram" (256 MiB, streamed from memory like a decode step). bytes_per_second
// counts weight bytes, so it compares directly with bandwidth_bench.
// Filter with --benchmark_filter=avx512/Q4_0 etc.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/kernels.h"

namespace {

using namespace llmn::tensor;

constexpr int64_t kRowWidth = 4096;
constexpr int kDistinctRows = 16;

const DType kTypes[] = {DType::f32,  DType::f16,  DType::bf16, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1,
                        DType::q8_0, DType::q2_k, DType::q3_k, DType::q4_k, DType::q5_k, DType::q6_k};

std::vector<float> random_floats(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
}

void bm_vec_dot(benchmark::State& state, Isa isa, DType type, size_t set_bytes) {
    const KernelTable* k = isa_kernels(isa, type);
    if (!k || !k->vec_dot) {
        state.SkipWithError("ISA not available on this CPU");
        return;
    }
    const size_t rb = row_bytes(type, kRowWidth);
    const size_t n_rows = set_bytes / rb > 0 ? set_bytes / rb : 1;
    // A few distinct quantized rows, repeated to fill the working set.
    std::vector<uint8_t> distinct(rb * kDistinctRows);
    const std::vector<float> w = random_floats(kRowWidth * kDistinctRows, 1);
    scalar_kernels(type).quantize_row(w.data(), distinct.data(), kRowWidth * kDistinctRows);
    std::vector<uint8_t> rows(rb * n_rows);
    for (size_t r = 0; r < n_rows; ++r) std::memcpy(&rows[r * rb], &distinct[(r % kDistinctRows) * rb], rb);
    const std::vector<float> a = random_floats(kRowWidth, 2);
    std::vector<uint8_t> act(row_bytes(k->vec_dot_type, kRowWidth));
    kernels(k->vec_dot_type).quantize_row(a.data(), act.data(), kRowWidth);

    for (auto _ : state) {
        float sum = 0.0f;
        for (size_t r = 0; r < n_rows; ++r) sum += k->vec_dot(kRowWidth, &rows[r * rb], act.data());
        benchmark::DoNotOptimize(sum);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(rb * n_rows));
}

// KernelTable::gemm over the whole working set against n_tok activation rows
// (n_tok = 1 is a decode step, 64 a prompt chunk). bytes_per_second counts
// weight bytes once per call, as a decode step reads them.
void bm_gemm(benchmark::State& state, Isa isa, DType type, size_t set_bytes, int64_t n_tok) {
    const KernelTable* k = isa_kernels(isa, type);
    if (!k || !k->gemm) {
        state.SkipWithError("no gemm for this type and ISA");
        return;
    }
    const size_t rb = row_bytes(type, kRowWidth);
    const size_t n_rows = set_bytes / rb > 0 ? set_bytes / rb : 1;
    std::vector<uint8_t> distinct(rb * kDistinctRows);
    const std::vector<float> w = random_floats(kRowWidth * kDistinctRows, 1);
    scalar_kernels(type).quantize_row(w.data(), distinct.data(), kRowWidth * kDistinctRows);
    std::vector<uint8_t> rows(rb * n_rows);
    for (size_t r = 0; r < n_rows; ++r) std::memcpy(&rows[r * rb], &distinct[(r % kDistinctRows) * rb], rb);
    const size_t ab = row_bytes(k->vec_dot_type, kRowWidth);
    const std::vector<float> a = random_floats(kRowWidth * n_tok, 2);
    std::vector<uint8_t> act(ab * size_t(n_tok));
    for (int64_t t = 0; t < n_tok; ++t)
        kernels(k->vec_dot_type).quantize_row(a.data() + t * kRowWidth, act.data() + t * ab, kRowWidth);
    std::vector<float> out(n_rows * size_t(n_tok));
    for (auto _ : state) {
        k->gemm(kRowWidth, rows.data(), rb, int64_t(n_rows), act.data(), ab, n_tok, out.data(), n_rows);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(rb * n_rows));
    state.counters["MAC/s"] = benchmark::Counter(double(state.iterations()) * double(n_rows) * double(kRowWidth) *
                                                     double(n_tok), benchmark::Counter::kIsRate);
}

void bm_quantize_activation(benchmark::State& state, Isa isa, DType type) {
    const KernelTable* k = isa_kernels(isa, type);
    if (!k || !k->quantize_row) {
        state.SkipWithError("ISA not available on this CPU");
        return;
    }
    const std::vector<float> a = random_floats(kRowWidth, 3);
    std::vector<uint8_t> out(row_bytes(type, kRowWidth));
    for (auto _ : state) {
        k->quantize_row(a.data(), out.data(), kRowWidth);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * kRowWidth * int64_t(sizeof(float)));
}

const int kRegistered = [] {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
        if (!isa_kernels(isa, DType::f32)) continue;
        const std::string isa_s(isa_name(isa));
        for (DType t : kTypes) {
            const std::string name = isa_s + "/vec_dot/" + std::string(dtype_name(t));
            benchmark::RegisterBenchmark((name + "/l2").c_str(), bm_vec_dot, isa, t, size_t(256) << 10);
            // Scalar is far from memory bound: only its in-cache figure is worth the time.
            if (isa != Isa::scalar)
                benchmark::RegisterBenchmark((name + "/dram").c_str(), bm_vec_dot, isa, t, size_t(256) << 20)
                    ->MinTime(0.5);
        }
        for (DType t : kTypes) {
            if (!isa_kernels(isa, t)->gemm) continue;
            const std::string name = isa_s + "/gemm/" + std::string(dtype_name(t));
            benchmark::RegisterBenchmark((name + "/tok1/dram").c_str(), bm_gemm, isa, t, size_t(256) << 20, 1)
                ->MinTime(0.5);
            benchmark::RegisterBenchmark((name + "/tok64/l2").c_str(), bm_gemm, isa, t, size_t(256) << 10, 64);
        }
        for (DType t : {DType::f16, DType::bf16, DType::q8_0, DType::q8_1, DType::q8_k})
            benchmark::RegisterBenchmark((isa_s + "/quantize/" + std::string(dtype_name(t))).c_str(),
                                         bm_quantize_activation, isa, t);
    }
    return 0;
}();

}  // namespace
