#include "support/random_model.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include "model/gguf_writer.h"
#include "tensor/kernels.h"

namespace llmn::testing {
namespace {

std::vector<uint8_t> random_tensor(tensor::DType type, int64_t cols, int64_t rows, float scale, std::mt19937_64& rng) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(size_t(cols * rows));
    for (float& x : v) x = dist(rng);
    const size_t row = tensor::row_bytes(type, cols);
    std::vector<uint8_t> out(row * rows);
    auto q = tensor::scalar_kernels(type).quantize_row;
    if (!q) throw std::runtime_error("no quantize_row for " + std::string(tensor::dtype_name(type)));
    for (int64_t r = 0; r < rows; ++r) q(v.data() + r * cols, out.data() + r * row, cols);
    return out;
}

std::vector<uint8_t> norm_weights(int64_t n, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> dist(0.8f, 1.2f);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    std::vector<uint8_t> out(n * sizeof(float));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

}  // namespace

int add_spm_vocab(model::GgufWriter& w, int n_vocab) {
    // <unk> <s> </s>, 256 byte tokens, then word pieces up to n_vocab.
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        scores.push_back(0);
        types.push_back(6);
    }
    for (int i = 0; int(tokens.size()) < n_vocab; ++i) {
        tokens.push_back("\xe2\x96\x81w" + std::to_string(i));
        scores.push_back(-float(i));
        types.push_back(1);
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_array_strings("tokenizer.ggml.tokens", tokens);
    w.set_array_f32("tokenizer.ggml.scores", scores);
    w.set_array_i32("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    return int(tokens.size());
}

std::string write_random_model(const RandomModelSpec& s, const std::string& path) {
    std::mt19937_64 rng(s.seed);
    model::GgufWriter w;
    const std::string a = s.arch;
    const int hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    const int64_t d = s.n_embd, nq = int64_t(s.n_head) * hd, nkv = int64_t(s.n_head_kv) * hd;
    w.set_string("general.architecture", a);
    w.set_string("general.name", "random-" + a + "-seed" + std::to_string(s.seed));
    w.set_u32(a + ".block_count", s.n_layer);
    w.set_u32(a + ".embedding_length", s.n_embd);
    w.set_u32(a + ".attention.head_count", s.n_head);
    w.set_u32(a + ".attention.head_count_kv", s.n_head_kv);
    w.set_u32(a + ".feed_forward_length", s.n_ff);
    w.set_u32(a + ".context_length", s.ctx_len);
    w.set_u32(a + ".attention.key_length", hd);
    w.set_u32(a + ".attention.value_length", hd);
    w.set_u32(a + ".rope.dimension_count", hd);
    w.set_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_f32(a + ".rope.freq_base", 10000.0f);

    const int n_tokens = add_spm_vocab(w, s.n_vocab);

    const int64_t V = n_tokens;
    const float ws = 1.0f / std::sqrt(float(d));
    w.add_tensor("token_embd.weight", s.weight_type, {d, V}, random_tensor(s.weight_type, d, V, 1.0f, rng));
    w.add_tensor("output_norm.weight", tensor::DType::f32, {d}, norm_weights(d, rng));
    const tensor::DType out_type = s.output_type.value_or(s.weight_type);
    if (!s.tied) w.add_tensor("output.weight", out_type, {d, V}, random_tensor(out_type, d, V, ws, rng));
    const bool fused = a == "phi3";
    for (int il = 0; il < s.n_layer; ++il) {
        auto n = [&](const char* suffix) { return "blk." + std::to_string(il) + "." + suffix + ".weight"; };
        w.add_tensor(n("attn_norm"), tensor::DType::f32, {d}, norm_weights(d, rng));
        if (fused) {
            w.add_tensor(n("attn_qkv"), s.weight_type, {d, nq + 2 * nkv}, random_tensor(s.weight_type, d, nq + 2 * nkv, ws, rng));
        } else {
            w.add_tensor(n("attn_q"), s.weight_type, {d, nq}, random_tensor(s.weight_type, d, nq, ws, rng));
            w.add_tensor(n("attn_k"), s.weight_type, {d, nkv}, random_tensor(s.weight_type, d, nkv, ws, rng));
            w.add_tensor(n("attn_v"), s.weight_type, {d, nkv}, random_tensor(s.weight_type, d, nkv, ws, rng));
        }
        if (a == "qwen2") {
            const std::string b = "blk." + std::to_string(il) + ".";
            w.add_tensor(b + "attn_q.bias", tensor::DType::f32, {nq}, random_tensor(tensor::DType::f32, nq, 1, 0.1f, rng));
            w.add_tensor(b + "attn_k.bias", tensor::DType::f32, {nkv}, random_tensor(tensor::DType::f32, nkv, 1, 0.1f, rng));
            w.add_tensor(b + "attn_v.bias", tensor::DType::f32, {nkv}, random_tensor(tensor::DType::f32, nkv, 1, 0.1f, rng));
        }
        if (a == "qwen3") {
            w.add_tensor(n("attn_q_norm"), tensor::DType::f32, {hd}, norm_weights(hd, rng));
            w.add_tensor(n("attn_k_norm"), tensor::DType::f32, {hd}, norm_weights(hd, rng));
        }
        w.add_tensor(n("attn_output"), s.weight_type, {nq, d}, random_tensor(s.weight_type, nq, d, 1.0f / std::sqrt(float(nq)), rng));
        w.add_tensor(n("ffn_norm"), tensor::DType::f32, {d}, norm_weights(d, rng));
        if (fused) {
            w.add_tensor(n("ffn_up"), s.weight_type, {d, 2 * int64_t(s.n_ff)}, random_tensor(s.weight_type, d, 2 * s.n_ff, ws, rng));
        } else {
            w.add_tensor(n("ffn_gate"), s.weight_type, {d, s.n_ff}, random_tensor(s.weight_type, d, s.n_ff, ws, rng));
            w.add_tensor(n("ffn_up"), s.weight_type, {d, s.n_ff}, random_tensor(s.weight_type, d, s.n_ff, ws, rng));
        }
        w.add_tensor(n("ffn_down"), s.weight_type, {s.n_ff, d}, random_tensor(s.weight_type, s.n_ff, d, 1.0f / std::sqrt(float(s.n_ff)), rng));
    }
    w.write(path);
    return path;
}

}  // namespace llmn::testing
