// llm-node generate: stream a continuation of a prompt, one token at a time.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "client/remote_session.h"
#include "client/resilient_session.h"
#include "cli/swarm_flags.h"
#include "net/identity.h"
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
               {{"--temp"}, true, "temperature, 0 = greedy (default 0.8)"},
               {{"--top-k"}, true, "top-k (default 40)"},
               {{"--top-p"}, true, "top-p (default 0.95)"},
               {{"--min-p"}, true, "min-p (default 0.05)"},
               {{"--repeat-penalty"}, true, "repetition penalty (default 1.0 = off)"},
               {{"--repeat-last-n"}, true, "window of the repetition penalty (default 64)"},
               {{"--seed"}, true, "random seed (default: random)"},
               {{"--chat"}, false, "wrap the prompt in the model's chat template"},
               {{"--ignore-eos"}, false, "keep generating past end-of-generation tokens"},
               {{"--json"}, false, "one JSON object per token, then a summary line"},
               {{"--route"}, true, "run the layers on nodes: host:port,host:port,... in layer order"},
               {{"--nodes"}, true, "candidate nodes host:port,...: plan the route and fail over"},
               {{"--wire-dtype"}, true, "hidden states on the wire: f16 (default) or f32"},
               {{"--swarm"}, false, "find the nodes on the DHT (with --bootstrap, or the public DHT)"},
               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : swarm_flags()) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node generate -m MODEL (-p TEXT | -f FILE) [options]\n%s", args.help().c_str());
        return 0;
    }
    engine::SamplerConfig sc;
    sc.temp = float(args.number("--temp", sc.temp));
    sc.top_k = int(args.integer("--top-k", sc.top_k));
    sc.top_p = float(args.number("--top-p", sc.top_p));
    sc.min_p = float(args.number("--min-p", sc.min_p));
    sc.repeat_penalty = float(args.number("--repeat-penalty", sc.repeat_penalty));
    sc.repeat_last_n = int(args.integer("--repeat-last-n", sc.repeat_last_n));
    if (args.has("--seed")) sc.seed = uint64_t(args.integer("--seed", 0));
    const int64_t n_predict = args.integer("-n", 128);
    if (n_predict < 0) throw UsageError("-n must be >= 0");
    std::string prompt = read_prompt(args);
    const bool json = args.has("--json");
    const int threads = thread_count(args);

    LoadedModel lm = load_model(args.str("-m"));
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
    std::unique_ptr<engine::Session> session_ptr;
    client::RemoteConfig rc;
    rc.n_ctx = scfg.n_ctx;
    const std::string wd = args.str("--wire-dtype", "f16");
    if (wd != "f16" && wd != "f32") throw UsageError("--wire-dtype must be f16 or f32");
    rc.wire_f32 = wd == "f32";
    if (args.has("--route") && args.has("--nodes")) throw UsageError("give either --route or --nodes");
    if (args.has("--route")) {
        session_ptr = std::make_unique<client::RemoteSession>(lm.model, client::parse_route(args.str("--route")), rc, pool);
    } else if (args.has("--swarm")) {
        auto dc = dht_config(args);
        if (!args.has("--dht-listen")) dc.listen = "0.0.0.0:0";
        auto dht = std::make_shared<swarm::Dht>(dc);
        const net::Key32 model_id = net::digest256(lm.model->file().header_bytes());
        client::ResilientConfig fc;
        fc.remote = rc;
        session_ptr = std::make_unique<client::ResilientSession>(
            lm.model, [dht, model_id] { return dht->peers(model_id, std::chrono::milliseconds(5000)); }, fc, pool);
    } else if (args.has("--nodes")) {
        const auto nodes = client::parse_route(args.str("--nodes"));
        client::ResilientConfig fc;
        fc.remote = rc;
        session_ptr = std::make_unique<client::ResilientSession>(lm.model, [nodes] { return nodes; }, fc, pool);
    } else {
        session_ptr = std::make_unique<engine::LocalSession>(lm.model, scfg, pool);
    }
    engine::Session& session = *session_ptr;
    engine::Sampler sampler(sc);
    std::vector<int32_t> history = ids;
    std::vector<float> logits;

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    session.eval(ids, logits);
    const auto t1 = clock::now();
    model::Utf8StreamDecoder decoder;
    int64_t n_gen = 0;
    const bool ignore_eos = args.has("--ignore-eos");
    if (ignore_eos) sampler.set_excluded(lm.tokenizer->vocab().eog_ids);
    while (n_gen < n_predict) {
        const int32_t id = sampler.sample(logits.data(), session.n_vocab(), history);
        if (!ignore_eos && lm.tokenizer->is_eog(id)) break;
        const std::string piece = lm.tokenizer->token_to_piece(id);
        if (json) {
            std::printf("{\"id\":%d,\"piece\":%s}\n", id, json_string(piece).c_str());
        } else {
            std::fputs(decoder.push(piece).c_str(), stdout);
        }
        std::fflush(stdout);
        history.push_back(id);
        if (++n_gen == n_predict) break;
        if (session.n_past() >= session.n_ctx()) {
            std::fprintf(stderr, "llm-node generate: context full after %lld tokens\n", (long long)n_gen);
            break;
        }
        session.eval({id}, logits);
    }
    const auto t2 = clock::now();
    const double pp_s = std::chrono::duration<double>(t1 - t0).count();
    const double tg_s = std::chrono::duration<double>(t2 - t1).count();
    const double pp_tps = pp_s > 0 ? ids.size() / pp_s : 0.0, tg_tps = tg_s > 0 && n_gen > 0 ? n_gen / tg_s : 0.0;
    if (json) {
        std::printf("{\"n_prompt\":%zu,\"n_gen\":%lld,\"prompt_tps\":%.3f,\"gen_tps\":%.3f}\n", ids.size(), (long long)n_gen, pp_tps, tg_tps);
    } else {
        std::fputs(decoder.flush().c_str(), stdout);
        std::fputs("\n", stdout);
    }
    std::fflush(stdout);
    std::fprintf(stderr, "prompt: %zu tokens, %.1f tok/s | generated: %lld tokens, %.1f tok/s\n", ids.size(), pp_tps,
                 (long long)n_gen, tg_tps);
    return 0;
}

}  // namespace llmn::cli
