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
    auto bad = [&](const std::string& what) { throw ArchError(f.path() + ": " + what); };
    // Every size is checked in 64 bits before it narrows, and bounded far above any real
    // model so that products of them (n_head * head length, n_layer * n_embd) stay in range.
    auto dim = [&](const std::string& key, int64_t value, int64_t hi) {
        if (value <= 0 || value > hi) bad(key + " = " + std::to_string(value) + " out of range (1.." + std::to_string(hi) + ")");
        return int32_t(value);
    };
    constexpr int64_t kMaxWidth = int64_t(1) << 20, kMaxHeads = 4096, kMaxHeadLen = 4096;
    try {
        c.n_layer = dim(p + "block_count", f.require_int(p + "block_count"), 4096);
        c.n_embd = dim(p + "embedding_length", f.require_int(p + "embedding_length"), kMaxWidth);
        c.n_head = dim(p + "attention.head_count", f.require_int(p + "attention.head_count"), kMaxHeads);
        c.n_head_kv = dim(p + "attention.head_count_kv", f.get_int(p + "attention.head_count_kv", c.n_head), kMaxHeads);
        c.n_ff = dim(p + "feed_forward_length", f.require_int(p + "feed_forward_length"), int64_t(1) << 22);
        c.n_ctx_train = dim(p + "context_length", f.get_int(p + "context_length", 2048), int64_t(1) << 24);
        c.n_embd_head_k = dim(p + "attention.key_length", f.get_int(p + "attention.key_length", c.n_embd / c.n_head), kMaxHeadLen);
        c.n_embd_head_v = dim(p + "attention.value_length", f.get_int(p + "attention.value_length", c.n_embd_head_k), kMaxHeadLen);
        c.n_rot = dim(p + "rope.dimension_count", f.get_int(p + "rope.dimension_count", c.n_embd_head_k), kMaxHeadLen);
        c.norm_rms_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
        c.rope_freq_base = float(f.get_float(p + "rope.freq_base", 10000.0));
        const int64_t file_type = f.get_int("general.file_type", -1);
        c.file_type = file_type >= -1 && file_type < 1024 ? int32_t(file_type) : -1;
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
        c.rope_scale_factor = factor > 0 && factor < 1e6 ? float(factor) : 1.0f;
        c.rope_orig_ctx = dim(p + "rope.scaling.original_context_length",
                              f.get_int(p + "rope.scaling.original_context_length", c.n_ctx_train), int64_t(1) << 24);
    } catch (const GgufError& e) {
        throw ArchError(e.what());
    }
    if (c.rope_scaling == RopeScaling::yarn)
        throw ArchError(f.path() + ": YaRN rope scaling is not supported yet");

    const TensorInfo* embd = f.tensor("token_embd.weight");
    int64_t n_vocab = f.get_int(p + "vocab_size", 0);
    if (n_vocab == 0) {
        if (const GgufValue* toks = f.find("tokenizer.ggml.tokens")) n_vocab = int64_t(toks->array_len());
        else if (embd && embd->ne.size() == 2) n_vocab = embd->ne[1];
    }
    if (n_vocab <= 0) bad("cannot determine the vocabulary size");
    c.n_vocab = dim("vocabulary size", n_vocab, int64_t(1) << 24);
    c.tied_embeddings = f.tensor("output.weight") == nullptr;

    if (c.n_head % c.n_head_kv != 0)
        bad("head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
    if (c.n_embd_head_k % 2 != 0) bad("attention.key_length " + std::to_string(c.n_embd_head_k) + " is odd");
    if (c.n_rot > c.n_embd_head_k || c.n_rot % 2 != 0) bad("rope.dimension_count " + std::to_string(c.n_rot) + " out of range");
    if (!(c.norm_rms_eps > 0)) bad("layer_norm_rms_epsilon must be > 0");
    return c;
}

}  // namespace llmn::model
