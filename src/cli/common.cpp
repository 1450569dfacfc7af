#include <fstream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "model/model_store.h"

namespace llmn::cli {

LoadedModel load_model(const std::string& path) {
    if (path.empty()) throw UsageError("no model given (-m MODEL.gguf)");
    LoadedModel lm;
    // A path is used as it is; anything else is a name `llm-node models` lists ("llama3.2:1b").
    lm.model = engine::Model::load(model::resolve_model(path));
    lm.tokenizer = model::Tokenizer::create(model::Vocab::from_gguf(lm.model->file()));
    return lm;
}

std::string read_prompt(const Args& args) {
    if (args.has("-p")) return args.str("-p");
    if (args.has("-f")) {
        const std::string path = args.str("-f");
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error(path + ": cannot read the prompt file");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    throw UsageError("no prompt given (-p TEXT or -f FILE)");
}

int thread_count(const Args& args) {
    int64_t t = args.integer("-t", 0);
    if (t < 0 || t > 1024) throw UsageError("-t must be between 1 and 1024 (0 or absent: every core)");
    if (t == 0) t = std::max(1u, std::thread::hardware_concurrency());
    return int(t);
}

std::vector<Flag> sampler_flags() {
    return {{{"--temp"}, true, "temperature, 0 = greedy (default 0.8)"},
            {{"--top-k"}, true, "top-k (default 40)"},
            {{"--top-p"}, true, "top-p (default 0.95)"},
            {{"--min-p"}, true, "min-p (default 0.05)"},
            {{"--repeat-penalty"}, true, "repetition penalty (default 1.0 = off)"},
            {{"--repeat-last-n"}, true, "window of the repetition penalty (default 64)"},
            {{"--seed"}, true, "random seed (default: random)"}};
}

engine::SamplerConfig sampler_config(const Args& args) {
    engine::SamplerConfig sc;
    sc.temp = float(args.number("--temp", sc.temp));
    sc.top_k = int(args.integer("--top-k", sc.top_k));
    sc.top_p = float(args.number("--top-p", sc.top_p));
    sc.min_p = float(args.number("--min-p", sc.min_p));
    sc.repeat_penalty = float(args.number("--repeat-penalty", sc.repeat_penalty));
    sc.repeat_last_n = int(args.integer("--repeat-last-n", sc.repeat_last_n));
    if (args.has("--seed")) sc.seed = uint64_t(args.integer("--seed", 0));
    return sc;
}

}  // namespace llmn::cli
