// llm-node info: what a GGUF file holds (family, size, quantization, layers, context).
#include <cstdio>

#include "cli/commands.h"
#include "model/model_summary.h"

namespace llmn::cli {

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

    const std::string quant = model::quantization_name(f);
    const uint64_t params = m.n_params(), size = m.weight_bytes();
    const bool has_template = f.find("tokenizer.chat_template") != nullptr;
    const model::Vocab& v = lm.tokenizer->vocab();
    if (args.has("--json")) {
        std::printf(
            "{\"file\":%s,\"name\":%s,\"family\":%s,\"architecture\":%s,\"parameters\":%llu,\"size_bytes\":%llu,"
            "\"quantization\":%s,\"layers\":%d,\"context\":%d,\"n_embd\":%d,\"n_head\":%d,\"n_head_kv\":%d,"
            "\"n_ff\":%d,\"n_vocab\":%d,\"tokenizer\":%s,\"pre_tokenizer\":%s,\"chat_template\":%s,\"tied_embeddings\":%s}\n",
            json_string(m.path()).c_str(), json_string(c.name).c_str(), json_string(c.spec.family).c_str(),
            json_string(c.spec.arch).c_str(), (unsigned long long)params, (unsigned long long)size, json_string(quant).c_str(),
            c.n_layer, c.n_ctx_train, c.n_embd, c.n_head, c.n_head_kv, c.n_ff, c.n_vocab, json_string(v.model).c_str(),
            json_string(v.pre).c_str(), has_template ? "true" : "false", c.tied_embeddings ? "true" : "false");
        return 0;
    }
    std::printf("file:          %s\n", m.path().c_str());
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
