// One function per subcommand; each returns the process exit status
// (0 ok, 1 runtime error, 2 bad usage) and prints results on stdout only.
#pragma once
#include <memory>
#include <string>

#include "cli/args.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "model/tokenizer.h"

namespace llmn::cli {

int cmd_generate(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_start(int argc, char** argv);
int cmd_swarm(int argc, char** argv);
int cmd_models(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_api(int argc, char** argv);
int cmd_demo(int argc, char** argv);
int cmd_share(int argc, char** argv);

// Shared helpers for the commands.
struct LoadedModel {
    std::shared_ptr<const engine::Model> model;
    std::unique_ptr<model::Tokenizer> tokenizer;
};
// Loads the model (header, config, tensor index) and builds its tokenizer.
LoadedModel load_model(const std::string& path);
// The prompt from -p (verbatim) or -f FILE; UsageError when neither is given.
std::string read_prompt(const Args& args);
// --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed
// (llama.cpp's names and defaults), and the sampler settings they give.
std::vector<Flag> sampler_flags();
engine::SamplerConfig sampler_config(const Args& args);
// -t, or every core when absent.
int thread_count(const Args& args);

}  // namespace llmn::cli
