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

}  // namespace llmn::cli
