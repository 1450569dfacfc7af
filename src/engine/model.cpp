#include "engine/model.h"

#include "tensor/dtype.h"

namespace llmn::engine {

std::shared_ptr<const Model> Model::load(const std::string& path) {
    std::shared_ptr<Model> m(new Model());
    m->file_ = model::GgufFile::open(path);
    m->config_ = model::read_model_config(*m->file_);
    // Fail early on the stage tensors every use of the model needs.
    (void)m->token_embd();
    return m;
}

static std::string shape_str(const std::vector<int64_t>& ne) {
    std::string s = "[";
    for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

const model::TensorInfo* Model::maybe(const std::string& name, std::initializer_list<int64_t> shape) const {
    const model::TensorInfo* t = file_->tensor(name);
    if (!t) return nullptr;
    std::vector<int64_t> want(shape);
    std::vector<int64_t> got = t->ne;
    while (got.size() > want.size() && got.back() == 1) got.pop_back();
    if (got != want)
        throw ModelError(path() + ": tensor '" + name + "' has shape " + shape_str(t->ne) + ", expected " + shape_str(want));
    if (!tensor::dtype_info(t->type).computable)
        throw ModelError(path() + ": tensor '" + name + "' has type " + std::string(tensor::dtype_name(t->type)) +
                         ", which this engine cannot compute");
    return t;
}

const model::TensorInfo& Model::need(const std::string& name, std::initializer_list<int64_t> shape) const {
    const model::TensorInfo* t = maybe(name, shape);
    if (!t) throw ModelError(path() + ": required tensor '" + name + "' is missing");
    return *t;
}

LayerWeights Model::layer(int il) const {
    const model::ModelConfig& c = config_;
    if (il < 0 || il >= c.n_layer)
        throw ModelError(path() + ": layer " + std::to_string(il) + " out of range [0, " + std::to_string(c.n_layer) + ")");
    auto name = [&](const char* s) { return model::layer_tensor_name(il, s); };
    auto bias = [&](const char* s) { return "blk." + std::to_string(il) + "." + s + ".bias"; };
    const int64_t d = c.n_embd, q = c.n_embd_q(), k = c.n_embd_k_gqa(), v = c.n_embd_v_gqa();
    LayerWeights w;
    w.attn_norm = &need(name("attn_norm"), {d});
    if (c.spec.fused_qkv) {
        w.wqkv = &need(name("attn_qkv"), {d, q + k + v});
    } else {
        w.wq = &need(name("attn_q"), {d, q});
        w.wk = &need(name("attn_k"), {d, k});
        w.wv = &need(name("attn_v"), {d, v});
    }
    // Biases are required where the family has them, allowed anywhere.
    w.bq = maybe(bias("attn_q"), {q});
    w.bk = maybe(bias("attn_k"), {k});
    w.bv = maybe(bias("attn_v"), {v});
    if (c.spec.qkv_bias && (!w.bq || !w.bk || !w.bv))
        throw ModelError(path() + ": layer " + std::to_string(il) + " lacks the q/k/v biases its architecture needs");
    if (c.spec.qk_norm) {
        w.q_norm = &need(name("attn_q_norm"), {c.n_embd_head_k});
        w.k_norm = &need(name("attn_k_norm"), {c.n_embd_head_k});
    }
    w.wo = &need(name("attn_output"), {q, d});
    w.ffn_norm = &need(name("ffn_norm"), {d});
    if (c.spec.fused_gate_up) {
        w.ffn_up = &need(name("ffn_up"), {d, 2 * int64_t(c.n_ff)});
    } else {
        w.ffn_gate = &need(name("ffn_gate"), {d, c.n_ff});
        w.ffn_up = &need(name("ffn_up"), {d, c.n_ff});
    }
    w.ffn_down = &need(name("ffn_down"), {c.n_ff, d});
    return w;
}

const model::TensorInfo& Model::token_embd() const { return need("token_embd.weight", {config_.n_embd, config_.n_vocab}); }
const model::TensorInfo& Model::output_norm() const { return need("output_norm.weight", {config_.n_embd}); }
const model::TensorInfo& Model::output() const {
    if (const model::TensorInfo* t = maybe("output.weight", {config_.n_embd, config_.n_vocab})) return *t;
    return token_embd();
}
const model::TensorInfo* Model::rope_freqs() const { return maybe("rope_freqs.weight", {config_.n_rot / 2}); }

uint64_t Model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : file_->tensors()) n += t.nbytes;
    return n;
}

uint64_t Model::span_weight_bytes(int a, int b) const {
    uint64_t n = 0;
    for (const auto& t : file_->tensors()) {
        if (t.name.rfind("blk.", 0) != 0) continue;
        int il = std::atoi(t.name.c_str() + 4);
        if (il >= a && il < b) n += t.nbytes;
    }
    return n;
}

uint64_t Model::n_params() const {
    uint64_t n = 0;
    for (const auto& t : file_->tensors()) n += uint64_t(t.n_elements());
    return n;
}

}  // namespace llmn::engine
