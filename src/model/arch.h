// Architecture configuration read from GGUF metadata.
//
// Each supported architecture lives in its own file under model/arch/ and fills
// in an ArchSpec: the feature flags the engine branches on (never on names) and
// how its hyper-parameters and tensors are named. arch/registry.cpp is the only
// place that lists every architecture.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmn::model {

class GgufFile;

class ArchError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class RopeType { norm, neox };  // pairs (2i, 2i+1) vs (i, i + n_rot/2)
enum class RopeScaling { none, linear, yarn, llama3 };

// Feature flags of an architecture family.
struct ArchSpec {
    std::string arch;           // general.architecture
    std::string family;         // human name: "Llama", "Qwen2", ...
    RopeType rope_type = RopeType::norm;
    bool qkv_bias = false;      // attn_{q,k,v}.bias present (required)
    bool qk_norm = false;       // per-head RMS norm of q and k before RoPE
    bool fused_qkv = false;     // one attn_qkv.weight instead of q/k/v
    bool fused_gate_up = false; // ffn_up.weight holds [gate; up]
};

// Hyper-parameters, named as GGUF and llama.cpp name them.
struct ModelConfig {
    ArchSpec spec;
    std::string name;           // general.name
    int32_t n_layer = 0;
    int32_t n_embd = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t n_ff = 0;
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    int32_t n_embd_head_k = 0;  // head dim of q/k
    int32_t n_embd_head_v = 0;  // head dim of v
    int32_t n_rot = 0;          // rotated dims per head
    float norm_rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    RopeScaling rope_scaling = RopeScaling::none;
    float rope_scale_factor = 1.0f;  // linear: positions are divided by it
    int32_t rope_orig_ctx = 0;
    bool tied_embeddings = false;    // no output.weight: the head reuses token_embd
    int32_t file_type = -1;          // general.file_type (llama_ftype), -1 when absent

    int32_t n_embd_q() const { return n_head * n_embd_head_k; }
    int32_t n_embd_k_gqa() const { return n_head_kv * n_embd_head_k; }
    int32_t n_embd_v_gqa() const { return n_head_kv * n_embd_head_v; }
};

// Reads the config of `file`; throws ArchError naming the file for an
// unsupported architecture or missing / inconsistent hyper-parameters.
ModelConfig read_model_config(const GgufFile& file);

// Names of the architectures we can run ("llama", "qwen2", ...).
std::vector<std::string> supported_architectures();

namespace arch {
// Per-architecture hooks, defined in model/arch/<name>.cpp.
ArchSpec llama_spec();
ArchSpec qwen2_spec();
ArchSpec qwen3_spec();
ArchSpec phi3_spec();
}  // namespace arch

// Standard GGUF tensor names.
std::string layer_tensor_name(int layer, const char* suffix);  // "blk.{layer}.{suffix}.weight"

}  // namespace llmn::model
