// llm-node api: the OpenAI-compatible HTTP API and the swarm status page,
// generating through the swarm (default), given nodes, or locally (--local).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "api/http_guard.h"
#include "engine/model_id.h"
#include "cli/weights_cli.h"
#include "cli/api_launch.h"
#include "cli/commands.h"
#include "cli/swarm_flags.h"
#include "net/identity.h"
#include "net/probe.h"

namespace llmn::cli {
namespace {

// Every value of a repeatable flag ("--flag V" or "--flag=V"), each split at commas;
// Args keeps only the last one.
std::vector<std::string> all_values(int argc, char** argv, const std::string& flag) {
    std::vector<std::string> out;
    auto add = [&out](const std::string& v) {
        size_t start = 0;
        for (size_t comma; (comma = v.find(',', start)) != std::string::npos; start = comma + 1)
            if (comma > start) out.push_back(v.substr(start, comma - start));
        if (start < v.size()) out.push_back(v.substr(start));
    };
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == flag && i + 1 < argc) add(argv[++i]);
        else if (a.rfind(flag + "=", 0) == 0) add(a.substr(flag.size() + 1));
    }
    return out;
}

api::ApiServer* g_api = nullptr;
extern "C" void on_api_signal(int) {
    if (g_api) g_api->stop();
}

}  // namespace

std::function<std::vector<api::NodeView>()> node_lister(const client::SessionSource& src, const engine::Model& model) {
    if (src.kind == client::SessionSource::Kind::local) return nullptr;
    const net::Key32 model_id = engine::model_id(model);
    return [src, model_id] {
        const std::vector<std::string> addrs = src.kind == client::SessionSource::Kind::discover ? src.discover() : src.addresses;
        std::vector<api::NodeView> out;
        const net::ProbeReport report = net::probe_swarm(addrs, std::chrono::milliseconds(1500), src.remote.swarm_key);
        for (const net::ProbedNode& p : report.nodes) {
            if (p.info.model_id != model_id) continue;
            out.push_back({p.address, net::to_hex(p.identity.data(), 32), int(p.info.span_start), int(p.info.span_end),
                           p.info.milli_tokens_per_s / 1000.0, p.rtt_seconds * 1000, int(p.info.free_sessions), "ok",
                           net::reach_name(p.info.reach)});
        }
        for (const net::ProbeFailure& f : report.failed) out.push_back({f.address, "", 0, 0, 0, 0, 0, "unreachable: " + f.reason, ""});
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            return a.span_start != b.span_start ? a.span_start < b.span_start : a.address < b.address;
        });
        return out;
    };
}

int run_api_server(api::ApiConfig cfg) {
    api::ApiServer server(std::move(cfg));
    const std::string addr = server.bind();
    std::printf("{\"listening\":\"%s\"}\n", addr.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "llm-node api: OpenAI-compatible API on http://%s/v1, status page on http://%s/\n", addr.c_str(), addr.c_str());
    if (const std::string w = server.exposure_warning(); !w.empty()) std::fprintf(stderr, "%s\n", w.c_str());
    g_api = &server;
    std::signal(SIGINT, on_api_signal);
    std::signal(SIGTERM, on_api_signal);
    server.run();
    g_api = nullptr;
    return 0;
}

int cmd_api(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF model file, model name or Ollama tag (or give it as the argument)"},
                               {{"--listen"}, true, "host:port of the HTTP server (default 127.0.0.1:8080)"},
                               {{"--name"}, true, "the model id clients use (default: the file's stem)"},
                               {{"-t", "--threads"}, true, "threads for this process's share of the work (default: all cores)"},
                               {{"-c", "--ctx-size"}, true, "context per request (default: min(4096, trained))"},
                               {{"--max-concurrent"}, true, "generations at once; more get HTTP 429 (default 16)"},
                               {{"--api-key"}, true, "every request needs 'Authorization: Bearer KEY' (or set LLM_NODE_API_KEY, kept out of ps)"},
                               {{"--allow-origin"}, true, "browser origin allowed to call the API, e.g. https://app.example (repeatable, a,b; * for any)"},
                               {{"--allow-host"}, true, "extra Host name the server answers to, NAME or NAME:PORT (repeatable, a,b)"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : session_flags(true)) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node api [MODEL] [--listen HOST:PORT] [--api-key KEY] [--allow-origin ORIGIN] [--allow-host HOST]\n"
                    "                    [--local | --nodes A,B | --route A,B | --bootstrap ...]\n%s"
                    "Browsers are refused unless the Host is the listen address or localhost/127.0.0.1/[::1] (or --allow-host),\n"
                    "and the Origin is one of those (or --allow-origin); POST bodies must be application/json.\n",
                    args.help().c_str());
        return 0;
    }
    api::ApiConfig cfg;
    cfg.allow_origins = all_values(argc, argv, "--allow-origin");
    cfg.allow_hosts = all_values(argc, argv, "--allow-host");
    const char* env_key = std::getenv("LLM_NODE_API_KEY");
    cfg.api_key = args.str("--api-key", env_key ? env_key : "");
    try {  // the flags' shape, before the model loads
        (void)api::HttpGuard(api::GuardConfig{"127.0.0.1", 0, cfg.allow_origins, cfg.allow_hosts, cfg.api_key});
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    std::string model = args.str("-m");
    if (model.empty() && !args.positional().empty()) model = args.positional().front();
    LoadedModel lm = load_model(client_model(args, model));  // a model id: fetched from the swarm
    cfg.model_path = lm.model->file().path();
    cfg.listen = args.str("--listen", "127.0.0.1:8080");
    cfg.model_name = args.str("--name");
    if (cfg.model_name.empty() && !std::filesystem::exists(model)) cfg.model_name = model;  // named by tag or name
    cfg.threads = thread_count(args);
    cfg.n_ctx = int(args.integer("-c", 0));
    cfg.max_concurrent = int(args.integer("--max-concurrent", 16));
    if (cfg.n_ctx < 0 || cfg.max_concurrent < 1) throw UsageError("-c must be >= 0 and --max-concurrent >= 1");
    cfg.source = session_source(args, *lm.model, true);
    cfg.nodes = node_lister(cfg.source, *lm.model);
    return run_api_server(std::move(cfg));
}

}  // namespace llmn::cli
