// llm-node generate: stream a continuation of a prompt, one token at a time.
#include <chrono>
#include <cstdio>

#include "cli/weights_cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/swarm_flags.h"
#include "engine/generator.h"
#include "engine/local_session.h"
#include "engine/sampler.h"
#include "model/chat_template.h"
#include "tensor/thread_pool.h"

namespace llmn::cli {

int cmd_generate(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF model file"},
               {{"-p", "--prompt"}, true, "prompt text (verbatim)"},
               {{"-f", "--file"}, true, "read the prompt from a file"},
               {{"-n", "--n-predict"}, true, "tokens to generate (default 128)"},
               {{"-t", "--threads"}, true, "threads (default: all cores)"},
               {{"-c", "--ctx-size"}, true, "context size (default: min(4096, trained))"},
               {{"--chat"}, false, "wrap the prompt in the model's chat template"},
               {{"--ignore-eos"}, false, "keep generating past end-of-generation tokens"},
               {{"--json"}, false, "one JSON object per token, then a summary line"},
               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : sampler_flags()) flags.push_back(f);
    for (Flag& f : session_flags(false)) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node generate -m MODEL (-p TEXT | -f FILE) [options]\n%s", args.help().c_str());
        return 0;
    }
    const engine::SamplerConfig sc = sampler_config(args);
    const int64_t n_predict = args.integer("-n", 128);
    if (n_predict < 0) throw UsageError("-n must be >= 0");
    std::string prompt = read_prompt(args);
    const bool json = args.has("--json");
    const int threads = thread_count(args);

    LoadedModel lm = load_model(client_model(args, args.str("-m")));  // a model id: fetched from the swarm
    const model::ModelConfig& cfg = lm.model->config();
    if (args.has("--chat")) {
        const model::ChatTemplate tmpl = model::ChatTemplate::detect(
            lm.model->file().get_string("tokenizer.chat_template", ""), cfg.spec.arch, lm.tokenizer->vocab().tokens);
        prompt = tmpl.render({{"user", prompt}}, true);
    }
    std::vector<int32_t> ids = lm.tokenizer->encode(prompt, true, true);
    if (ids.empty()) throw std::runtime_error("the prompt tokenizes to nothing (and the model adds no BOS)");

    engine::SessionConfig scfg;
    const int64_t want_ctx = args.integer("-c", std::min<int64_t>(4096, std::max<int64_t>(cfg.n_ctx_train, int64_t(ids.size()) + n_predict)));
    scfg.n_ctx = int(std::max<int64_t>(want_ctx, 8));
    if (int64_t(ids.size()) >= scfg.n_ctx)
        throw std::runtime_error("prompt of " + std::to_string(ids.size()) + " tokens does not fit the context of " + std::to_string(scfg.n_ctx));
    tensor::ThreadPool pool(threads);
    const client::SessionSource src = session_source(args, *lm.model, false);
    // Read the weights in before the clock starts: locally all of them, through
    // nodes only the embeddings, the head and any --local-layers.
    const bool local = src.kind == client::SessionSource::Kind::local;
    prefault_with_progress(*lm.model, {0, local ? cfg.n_layer : src.remote.local_layers, true}, "loading weights");
    std::unique_ptr<engine::Session> session = client::open_session(src, lm.model, scfg.n_ctx, pool);
    engine::Sampler sampler(sc);
    engine::GenerateOptions go;
    go.max_tokens = int(std::min<int64_t>(n_predict, 1 << 30));
    go.ignore_eos = args.has("--ignore-eos");
    auto on_token = [&](int32_t id) {
        if (!json) return;
        std::printf("{\"id\":%d,\"piece\":%s}\n", id, json_string(lm.tokenizer->token_to_piece(id)).c_str());
        std::fflush(stdout);
    };
    auto on_text = [&](const std::string& text) {
        if (!json) {
            std::fputs(text.c_str(), stdout);
            std::fflush(stdout);
        }
        return true;
    };
    const engine::GenerateResult r = engine::generate(*session, *lm.tokenizer, sampler, ids, go, on_text, on_token);
    if (r.finish_reason == "length" && r.n_gen < go.max_tokens)
        std::fprintf(stderr, "llm-node generate: context full after %d tokens\n", r.n_gen);
    const double pp_tps = r.prompt_seconds > 0 ? ids.size() / r.prompt_seconds : 0.0;
    const double tg_tps = r.gen_seconds > 0 && r.n_gen > 0 ? r.n_gen / r.gen_seconds : 0.0;
    if (json) {
        std::printf("{\"n_prompt\":%zu,\"n_gen\":%d,\"prompt_tps\":%.3f,\"gen_tps\":%.3f}\n", ids.size(), r.n_gen, pp_tps, tg_tps);
    } else {
        std::fputs("\n", stdout);
    }
    std::fflush(stdout);
    std::fprintf(stderr, "prompt: %zu tokens, %.1f tok/s | generated: %d tokens, %.1f tok/s\n", ids.size(), pp_tps, r.n_gen, tg_tps);
    return 0;
}

}  // namespace llmn::cli
