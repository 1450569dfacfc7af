// llm-node bench: prompt-processing and generation tokens/s, llama-bench style,
// plus peak resident memory. With --layers a:b only that span runs (what a node
// serving it would do), on random hidden states.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "model/model_store.h"
#include "client/remote_session.h"
#include "engine/local_session.h"
#include "tensor/kernels.h"
#include "tensor/thread_pool.h"

namespace llmn::cli {
namespace {

struct Result {
    std::string test;  // "pp64", "tg32"
    int n_prompt = 0, n_gen = 0;
    std::vector<double> ts;  // tokens/s per repetition
    double avg() const {
        double s = 0;
        for (double v : ts) s += v;
        return ts.empty() ? 0 : s / double(ts.size());
    }
    double stddev() const {
        if (ts.size() < 2) return 0;
        double m = avg(), s = 0;
        for (double v : ts) s += (v - m) * (v - m);
        return std::sqrt(s / double(ts.size() - 1));
    }
};

uint64_t peak_rss_bytes() {
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return uint64_t(ru.ru_maxrss) * 1024;
}

// Runs `tokens` tokens either as one batch (prompt) or one at a time (generation).
class Runner {
public:
    Runner(std::shared_ptr<const engine::Model> m, int a, int b, int n_ctx, tensor::ThreadPool& pool,
           const std::vector<std::string>& route = {})
        : m_(m), pool_(pool), n_ctx_(n_ctx), route_(route), span_only_(a != 0 || b != m->config().n_layer) {
        if (span_only_) span_ = std::make_unique<engine::LayerSpan>(m, a, b, n_ctx);
        else reset();
    }
    // A fresh session (remote sessions are reopened, local ones rewound).
    void reset() {
        if (span_) return span_->reset();
        session_.reset();
        if (route_.empty()) session_ = std::make_unique<engine::LocalSession>(m_, engine::SessionConfig{n_ctx_, 512}, pool_);
        else session_ = std::make_unique<client::RemoteSession>(m_, route_, client::RemoteConfig{n_ctx_}, pool_);
    }
    void run(int n_tokens, bool one_at_a_time, std::mt19937& rng) {
        const int nv = m_->config().n_vocab, d = m_->config().n_embd;
        const int step = one_at_a_time ? 1 : n_tokens;
        for (int done = 0; done < n_tokens; done += step) {
            if (span_) {
                hidden_.resize(size_t(step) * d);
                std::normal_distribution<float> dist(0.0f, 1.0f);
                for (float& v : hidden_) v = dist(rng);
                span_->forward(hidden_.data(), step, span_->n_past(), pool_);
            } else {
                std::vector<int32_t> ids(step);
                for (int32_t& id : ids) id = int32_t(rng() % uint32_t(nv));
                session_->eval(ids, logits_);
            }
        }
    }

private:
    std::shared_ptr<const engine::Model> m_;
    tensor::ThreadPool& pool_;
    int n_ctx_;
    std::vector<std::string> route_;
    bool span_only_;
    std::unique_ptr<engine::LayerSpan> span_;
    std::unique_ptr<engine::Session> session_;
    std::vector<float> hidden_, logits_;
};

// N client sessions generating n tokens each at once through the same route.
void run_concurrent(std::shared_ptr<const engine::Model> m, const std::vector<std::string>& route, int sessions, int n, int n_ctx) {
    std::vector<std::thread> threads;
    std::vector<std::string> errors(sessions);
    for (int i = 0; i < sessions; ++i)
        threads.emplace_back([&, i] {
            try {
                tensor::ThreadPool pool(1);
                Runner r(m, 0, m->config().n_layer, n_ctx, pool, route);
                std::mt19937 rng{uint32_t(i)};
                r.run(n, true, rng);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
        if (!e.empty()) throw std::runtime_error(e);
}

std::pair<int, int> parse_layers(const std::string& s, int n_layer) {
    if (s.empty()) return {0, n_layer};
    const auto colon = s.find(':');
    if (colon == std::string::npos) throw UsageError("--layers wants a:b, got '" + s + "'");
    try {
        const int a = std::stoi(s.substr(0, colon)), b = std::stoi(s.substr(colon + 1));
        if (a < 0 || b > n_layer || a >= b) throw UsageError("--layers " + s + " is not inside [0, " + std::to_string(n_layer) + ")");
        return {a, b};
    } catch (const std::logic_error&) {
        throw UsageError("--layers wants a:b, got '" + s + "'");
    }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file"},
               {{"-p", "--n-prompt"}, true, "prompt tokens (default 64; 0 skips)"},
               {{"-n", "--n-gen"}, true, "generated tokens (default 32; 0 skips)"},
               {{"-t", "--threads"}, true, "threads (default: all cores)"},
               {{"-r", "--repetitions"}, true, "repetitions (default 3)"},
               {{"--layers"}, true, "run only layers a:b (a node's span)"},
               {{"-o", "--output"}, true, "md (default) or json"},
               {{"--route"}, true, "run the layers on nodes host:port,... (client side of a swarm)"},
               {{"--sessions"}, true, "concurrent sessions for the generation test (default 1; needs --route)"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node bench -m MODEL [-p 64] [-n 32] [-t N] [-r 3] [--layers a:b] [-o md|json]\n%s", args.help().c_str());
        return 0;
    }
    const int n_prompt = int(args.integer("-p", 64)), n_gen = int(args.integer("-n", 32)), reps = int(args.integer("-r", 3));
    const std::string out = args.str("-o", "md");
    if (n_prompt < 0 || n_gen < 0 || reps <= 0) throw UsageError("-p, -n must be >= 0 and -r > 0");
    if (out != "md" && out != "json") throw UsageError("-o must be md or json");
    const std::string path = args.str("-m");
    if (path.empty()) throw UsageError("no model given (-m MODEL.gguf)");
    auto model = engine::Model::load(model::resolve_model(path));
    const auto [a, b] = parse_layers(args.str("--layers"), model->config().n_layer);
    const int threads = thread_count(args);
    tensor::ThreadPool pool(threads);
    const std::vector<std::string> route = args.has("--route") ? client::parse_route(args.str("--route")) : std::vector<std::string>{};
    const int sessions = int(args.integer("--sessions", 1));
    if (sessions < 1 || (sessions > 1 && route.empty())) throw UsageError("--sessions N needs --route and N >= 1");
    if (!route.empty() && args.has("--layers")) throw UsageError("--layers and --route do not mix");
    Runner runner(model, a, b, std::max(n_prompt, n_gen) + 1, pool, route);
    std::mt19937 rng(42);

    std::vector<Result> results;
    for (auto [n, gen] : {std::pair{n_prompt, false}, std::pair{n_gen, true}}) {
        if (n == 0) continue;
        Result r;
        r.test = (gen ? "tg" : "pp") + std::to_string(n);
        (gen ? r.n_gen : r.n_prompt) = n;
        runner.reset();
        runner.run(gen ? std::min(n, 4) : n, gen, rng);  // warm-up: pages the weights in
        if (gen && sessions > 1) r.test += " x" + std::to_string(sessions) + " sessions (aggregate)";
        for (int i = 0; i < reps; ++i) {
            runner.reset();
            const auto t0 = std::chrono::steady_clock::now();
            if (gen && sessions > 1) {
                run_concurrent(model, route, sessions, n, std::max(n_prompt, n_gen) + 1);
            } else {
                runner.run(n, gen, rng);
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            r.ts.push_back(double(n) * (gen ? sessions : 1) / s);
            std::fprintf(stderr, "%s rep %d: %.2f tok/s\n", r.test.c_str(), i + 1, r.ts.back());
        }
        results.push_back(r);
    }
    const uint64_t rss = peak_rss_bytes();
    const uint64_t bytes = (a == 0 && b == model->config().n_layer) ? model->weight_bytes() : model->span_weight_bytes(a, b);
    const std::string isa(tensor::isa_name(tensor::active_isa()));
    char desc[160];
    const std::string& mname = model->config().name;
    std::snprintf(desc, sizeof desc, "%s%s%s", model->config().spec.arch.c_str(),
                  mname.empty() || mname == model->config().spec.arch ? "" : (" " + mname).c_str(),
                  (a == 0 && b == model->config().n_layer) ? "" : (" layers " + std::to_string(a) + ":" + std::to_string(b)).c_str());
    if (out == "json") {
        std::printf("[\n");
        for (size_t i = 0; i < results.size(); ++i) {
            const Result& r = results[i];
            std::printf("  {\"model_filename\":%s,\"model_type\":%s,\"model_size\":%llu,\"model_n_params\":%llu,\"cpu_isa\":%s,"
                        "\"n_threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"layers\":\"%d:%d\",\"avg_ts\":%.6f,\"stddev_ts\":%.6f,"
                        "\"samples_ts\":[",
                        json_string(path).c_str(), json_string(desc).c_str(), (unsigned long long)bytes,
                        (unsigned long long)model->n_params(), json_string(isa).c_str(), threads, r.n_prompt, r.n_gen, a, b,
                        r.avg(), r.stddev());
            for (size_t k = 0; k < r.ts.size(); ++k) std::printf("%s%.6f", k ? "," : "", r.ts[k]);
            std::printf("],\"peak_rss_bytes\":%llu}%s\n", (unsigned long long)rss, i + 1 < results.size() ? "," : "");
        }
        std::printf("]\n");
    } else {
        std::printf("| model | size | params | isa | threads | test | t/s | peak RSS |\n");
        std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
        for (const Result& r : results)
            std::printf("| %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f | %.1f MiB |\n", desc, bytes / 1048576.0,
                        model->n_params() / 1e6, isa.c_str(), threads, r.test.c_str(), r.avg(), r.stddev(), rss / 1048576.0);
    }
    return 0;
}

}  // namespace llmn::cli
