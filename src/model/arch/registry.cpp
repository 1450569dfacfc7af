// The one table of supported architectures, and the generic hparams reader.

#include "model/arch.h"
#include "model/gguf_reader.h"

namespace llmn::model {
namespace {

struct Entry {
    const char* arch;
    ArchSpec (*spec)();
};

constexpr Entry kRegistry[] = {
    {"llama", arch::llama_spec},
    {"qwen2", arch::qwen2_spec},
    {"qwen3", arch::qwen3_spec},
    {"phi3", arch::phi3_spec},
};

}  // namespace

std::vector<std::string> supported_architectures() {
    std::vector<std::string> out;
    for (const Entry& e : kRegistry) out.emplace_back(e.arch);
    return out;
}

std::string layer_tensor_name(int layer, const char* suffix) {
    return "blk." + std::to_string(layer) + "." + suffix + ".weight";
}

ModelConfig read_model_config(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture");
    if (arch.empty()) throw ArchError(f.path() + ": metadata has no general.architecture");
    const Entry* entry = nullptr;
    for (const Entry& e : kRegistry)
        if (arch == e.arch) entry = &e;
    if (!entry) {
        std::string list;
        for (const Entry& e : kRegistry) list += (list.empty() ? "" : ", ") + std::string(e.arch);
        throw ArchError(f.path() + ": unsupported architecture '" + arch + "' (supported: " + list + ")");
    }

    ModelConfig c;
    c.spec = entry->spec();
    c.name = f.get_string("general.name", "");
    const std::string p = arch + ".";
    try {
        c.n_layer = int32_t(f.require_int(p + "block_count"));
        c.n_embd = int32_t(f.require_int(p + "embedding_length"));
        c.n_head = int32_t(f.require_int(p + "attention.head_count"));
        c.n_head_kv = int32_t(f.get_int(p + "attention.head_count_kv", c.n_head));
        c.n_ff = int32_t(f.require_int(p + "feed_forward_length"));
        c.n_ctx_train = int32_t(f.get_int(p + "context_length", 2048));
        if (c.n_head <= 0) throw ArchError(f.path() + ": " + p + "attention.head_count must be > 0");
        c.n_embd_head_k = int32_t(f.get_int(p + "attention.key_length", c.n_embd / c.n_head));
        c.n_embd_head_v = int32_t(f.get_int(p + "attention.value_length", c.n_embd_head_k));
        c.n_rot = int32_t(f.get_int(p + "rope.dimension_count", c.n_embd_head_k));
        c.norm_rms_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
        c.rope_freq_base = float(f.get_float(p + "rope.freq_base", 10000.0));
        c.file_type = int32_t(f.get_int("general.file_type", -1));
        const std::string scaling = f.get_string(p + "rope.scaling.type", "none");
        double factor = f.get_float(p + "rope.scaling.factor", 0.0);
        if (factor == 0.0 && f.find(p + "rope.scale_linear")) {
            factor = f.get_float(p + "rope.scale_linear", 1.0);
            if (factor != 1.0) c.rope_scaling = RopeScaling::linear;
        }
        if (scaling == "linear") c.rope_scaling = RopeScaling::linear;
        else if (scaling == "yarn") c.rope_scaling = RopeScaling::yarn;
        else if (scaling == "llama3") c.rope_scaling = RopeScaling::llama3;
        else if (scaling != "none" && !scaling.empty())
            throw ArchError(f.path() + ": unsupported rope scaling type '" + scaling + "'");
        c.rope_scale_factor = factor > 0 ? float(factor) : 1.0f;
        c.rope_orig_ctx = int32_t(f.get_int(p + "rope.scaling.original_context_length", c.n_ctx_train));
    } catch (const GgufError& e) {
        throw ArchError(e.what());
    }
    if (c.rope_scaling == RopeScaling::yarn)
        throw ArchError(f.path() + ": YaRN rope scaling is not supported yet");

    const TensorInfo* embd = f.tensor("token_embd.weight");
    c.n_vocab = int32_t(f.get_int(p + "vocab_size", 0));
    if (c.n_vocab == 0) {
        if (const GgufValue* toks = f.find("tokenizer.ggml.tokens")) c.n_vocab = int32_t(toks->array_len());
        else if (embd && embd->ne.size() == 2) c.n_vocab = int32_t(embd->ne[1]);
    }
    c.tied_embeddings = f.tensor("output.weight") == nullptr;

    auto bad = [&](const std::string& what) { throw ArchError(f.path() + ": " + what); };
    if (c.n_layer <= 0 || c.n_layer > 4096) bad("block_count " + std::to_string(c.n_layer) + " out of range");
    if (c.n_embd <= 0 || c.n_ff <= 0) bad("embedding_length / feed_forward_length must be > 0");
    if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
        bad("head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
    if (c.n_embd_head_k <= 0 || c.n_embd_head_v <= 0 || c.n_embd_head_k % 2 != 0) bad("bad attention key/value length");
    if (c.n_rot <= 0 || c.n_rot > c.n_embd_head_k || c.n_rot % 2 != 0) bad("rope.dimension_count " + std::to_string(c.n_rot) + " out of range");
    if (c.n_vocab <= 0) bad("cannot determine the vocabulary size");
    if (!(c.norm_rms_eps > 0)) bad("layer_norm_rms_epsilon must be > 0");
    return c;
}

}  // namespace llmn::model
