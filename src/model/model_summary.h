// What a GGUF header says about the model it holds, for listings (`llm-node
// models`, `llm-node info`): read from metadata and the tensor index only, so no
// page of tensor data is touched.
#pragma once
#include <cstdint>
#include <string>

namespace llmn::model {

class GgufFile;

struct ModelSummary {
    std::string name;            // general.name ("" when absent)
    std::string arch;            // general.architecture
    std::string family;          // ArchSpec::family ("Llama", "Qwen2"), or `arch` when unsupported
    bool supported = false;      // read_model_config accepts it, so the engine can run it
    std::string why_unsupported; // read_model_config's message when not supported
    uint64_t n_params = 0;       // elements of every tensor
    uint64_t weight_bytes = 0;   // bytes of every tensor
    std::string quantization;    // "Q4_K_M", "F16", ... (see quantization_name)
    int64_t context_length = 0;  // <arch>.context_length (trained), 0 when absent
    int64_t n_layer = 0;         // <arch>.block_count
};

// Summarizes `f`. Throws GgufError when the file has no general.architecture;
// an architecture we cannot run still gets a summary with supported = false.
ModelSummary summarize_model(const GgufFile& f);

// The quantization as llama.cpp names it: general.file_type's llama_ftype name
// ("Q4_K_M"), else the dtype holding the most bytes of 2-D weights ("Q8_0").
std::string quantization_name(const GgufFile& f);

}  // namespace llmn::model
