#include "model/model_summary.h"

#include <map>

#include "model/arch.h"
#include "model/gguf_reader.h"

namespace llmn::model {
namespace {

// llama.cpp's llama_ftype names for general.file_type.
std::string file_type_name(int64_t ft) {
    static const std::map<int64_t, const char*> names = {
        {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
        {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
        {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"}};
    auto it = names.find(ft);
    return it == names.end() ? "" : it->second;
}

}  // namespace

std::string quantization_name(const GgufFile& f) {
    // A key of the wrong type is treated as absent: a listing must not fail on it.
    int64_t ft = -1;
    try {
        ft = f.get_int("general.file_type", -1);
    } catch (const GgufError&) {
    }
    std::string quant = file_type_name(ft);
    if (!quant.empty()) return quant;
    std::map<std::string, uint64_t> bytes;
    for (const auto& t : f.tensors())
        if (t.ne.size() >= 2) bytes[std::string(tensor::dtype_name(t.type))] += t.nbytes;
    uint64_t best = 0;
    for (const auto& [name, n] : bytes)
        if (n > best) best = n, quant = name;
    return quant;
}

ModelSummary summarize_model(const GgufFile& f) {
    ModelSummary s;
    s.arch = f.get_string("general.architecture");
    if (s.arch.empty()) throw GgufError(f.path() + ": metadata has no general.architecture");
    s.name = f.get_string("general.name", "");
    for (const auto& t : f.tensors()) {
        s.n_params += uint64_t(t.n_elements());
        s.weight_bytes += t.nbytes;
    }
    s.quantization = quantization_name(f);
    try {
        const ModelConfig c = read_model_config(f);
        s.family = c.spec.family;
        s.supported = true;
        s.context_length = c.n_ctx_train;
        s.n_layer = c.n_layer;
    } catch (const std::exception& e) {
        // Still worth listing (an Ollama store holds many archs); say why we cannot run it.
        s.family = s.arch;
        s.why_unsupported = e.what();
        try {
            s.context_length = f.get_int(s.arch + ".context_length", 0);
            s.n_layer = f.get_int(s.arch + ".block_count", 0);
        } catch (const GgufError&) {
        }
    }
    return s;
}

}  // namespace llmn::model
