// llm-node info: what a GGUF file holds (family, size, quantization, layers, context).
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "tensor/dtype.h"

namespace llmn::cli {

// llama.cpp's llama_ftype names for general.file_type.
static std::string file_type_name(int ft) {
    static const std::map<int, const char*> names = {
        {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
        {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
        {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"}};
    auto it = names.find(ft);
    return it == names.end() ? "" : it->second;
}

int cmd_info(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file (or give it as the argument)"},
               {{"--json"}, false, "print one JSON object"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node info MODEL.gguf [--json]\n%s", args.help().c_str());
        return 0;
    }
    std::string path = args.str("-m");
    if (path.empty() && !args.positional().empty()) path = args.positional().front();
    if (path.empty()) throw UsageError("no model given");
    LoadedModel lm = load_model(path);
    const engine::Model& m = *lm.model;
    const model::ModelConfig& c = m.config();
    const model::GgufFile& f = m.file();

    // Quantization: the file's declared type, else the most common weight type.
    std::string quant = file_type_name(c.file_type);
    if (quant.empty()) {
        std::map<std::string, uint64_t> bytes;
        for (const auto& t : f.tensors())
            if (t.ne.size() >= 2) bytes[std::string(tensor::dtype_name(t.type))] += t.nbytes;
        uint64_t best = 0;
        for (const auto& [name, n] : bytes)
            if (n > best) best = n, quant = name;
    }
    const uint64_t params = m.n_params(), size = m.weight_bytes();
    const bool has_template = f.find("tokenizer.chat_template") != nullptr;
    const model::Vocab& v = lm.tokenizer->vocab();
    if (args.has("--json")) {
        std::printf(
            "{\"file\":%s,\"name\":%s,\"family\":%s,\"architecture\":%s,\"parameters\":%llu,\"size_bytes\":%llu,"
            "\"quantization\":%s,\"layers\":%d,\"context\":%d,\"n_embd\":%d,\"n_head\":%d,\"n_head_kv\":%d,"
            "\"n_ff\":%d,\"n_vocab\":%d,\"tokenizer\":%s,\"pre_tokenizer\":%s,\"chat_template\":%s,\"tied_embeddings\":%s}\n",
            json_string(path).c_str(), json_string(c.name).c_str(), json_string(c.spec.family).c_str(),
            json_string(c.spec.arch).c_str(), (unsigned long long)params, (unsigned long long)size, json_string(quant).c_str(),
            c.n_layer, c.n_ctx_train, c.n_embd, c.n_head, c.n_head_kv, c.n_ff, c.n_vocab, json_string(v.model).c_str(),
            json_string(v.pre).c_str(), has_template ? "true" : "false", c.tied_embeddings ? "true" : "false");
        return 0;
    }
    std::printf("file:          %s\n", path.c_str());
    std::printf("name:          %s\n", c.name.empty() ? "(none)" : c.name.c_str());
    std::printf("family:        %s (architecture '%s')\n", c.spec.family.c_str(), c.spec.arch.c_str());
    std::printf("parameters:    %.2f M\n", params / 1e6);
    std::printf("size:          %.2f MiB of weights (GGUF v%u)\n", size / 1048576.0, f.version());
    std::printf("quantization:  %s\n", quant.c_str());
    std::printf("layers:        %d\n", c.n_layer);
    std::printf("context:       %d (trained)\n", c.n_ctx_train);
    std::printf("embedding:     %d, heads %d, kv heads %d, head dim %d, ffn %d\n", c.n_embd, c.n_head, c.n_head_kv,
                c.n_embd_head_k, c.n_ff);
    std::printf("vocabulary:    %d tokens (%s, pre-tokenizer %s)\n", c.n_vocab, v.model.c_str(), v.pre.c_str());
    std::printf("chat template: %s\n", has_template ? "present" : "absent");
    std::printf("embeddings:    %s\n", c.tied_embeddings ? "tied (head reuses token_embd)" : "separate output head");
    return 0;
}

}  // namespace llmn::cli
