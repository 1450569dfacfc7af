// llm-node start: a zero-config swarm node. It measures the machine, finds the
// model's swarm on the DHT, serves the layers where the swarm is weakest (or
// --layers a:b), announces itself and keeps re-checking.
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "cli/swarm_flags.h"
#include "cli/weights_cli.h"
#include <filesystem>
#include "swarm/weights_join.h"
#include "model/model_store.h"
#include "node/swarm_node.h"

namespace llmn::cli {
namespace {

node::SwarmNode* g_swarm_node = nullptr;
extern "C" void on_start_signal(int) {
    if (g_swarm_node) g_swarm_node->stop();
}

}  // namespace

int cmd_start(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF file or model name (or give it as the argument)"},
                               {{"--layers"}, true, "force the span a:b instead of choosing one"},
                               {{"--relay-only"}, false, "only relay onion circuits for the swarm: load no layers"},
                               {{"--listen"}, true, "host:port to serve on (default 0.0.0.0:7001)"},
                               {{"--key"}, true, "identity key file (default ~/.cache/llm-node/node.key)"},
                               {{"-t", "--threads"}, true, "compute threads (default: all cores)"},
                               {{"--max-memory"}, true, "MiB this node may use for weights and cache (default: 80% of free memory)"},
                               {{"--max-sessions"}, true, "concurrent sessions (default 64)"},
                               {{"--recheck"}, true, "seconds between span re-checks (default 60)"},
                               {{"--advertise"}, true, "HOST:PORT others reach this node at (a port you forwarded by hand)"},
                               {{"--relay"}, true, "HOST:PORT of the relay to serve through when unreachable (default: one from the swarm)"},
                               {{"--allow-private-hops"}, false, "let any peer name next hops on private addresses (10/8, 172.16/12, 192.168/16, fc00::/7); LAN peers always may"},
                               {{"--relay-slots"}, true, "nodes behind NAT this node relays at once (default 8; 32 with --relay-only; 0: none)"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : swarm_flags()) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node start [MODEL] [options]\n"
                    "MODEL is a GGUF path, a name 'llm-node models' lists, or a model id (64 hex digits) to fetch\n"
                    "from the swarm: the header, then only this node's layers; without one, the bundled\n"
                    "models/stories260K.gguf, else the first runnable model 'llm-node models' lists.\n%s",
                    args.help().c_str());
        return 0;
    }
    node::SwarmNodeConfig cfg;
    cfg.node.model_path = args.str("-m");
    if (cfg.node.model_path.empty() && !args.positional().empty()) cfg.node.model_path = args.positional().front();
    std::error_code ec;
    if (const auto id = swarm::parse_model_id(cfg.node.model_path); id && !std::filesystem::exists(cfg.node.model_path, ec)) {
        cfg.fetch_model = id;  // no file: the header, then only this node's layers, come from the swarm
        cfg.node.model_path.clear();
    } else if (!cfg.node.model_path.empty()) {
        cfg.node.model_path = model::resolve_model(cfg.node.model_path);  // a path, or a name from `llm-node models`
    } else if (const auto found = model::default_model()) {
        // The rule is model::default_model's: the bundled stories260K in ./models, else the first model found.
        cfg.node.model_path = found->file;
        std::fprintf(stderr, "[swarm] no model given: serving %s (%s, %s, from %s)\n", found->name.c_str(),
                     found->family.c_str(), found->file.c_str(), found->source.c_str());
    } else {
        throw UsageError("no model given and none found on this machine (llm-node start MODEL; see 'llm-node models')");
    }
    if (args.has("--layers")) {
        const std::string s = args.str("--layers");
        const auto colon = s.find(':');
        if (colon == std::string::npos) throw UsageError("--layers wants a:b, got '" + s + "'");
        const int a = std::atoi(s.substr(0, colon).c_str()), b = std::atoi(s.substr(colon + 1).c_str());
        if (a < 0 || b <= a) throw UsageError("--layers wants a:b with a < b, got '" + s + "'");
        cfg.forced_span = std::make_pair(a, b);
    }
    if (args.has("--relay-only")) {
        if (args.has("--layers")) throw UsageError("--relay-only serves no layers: drop --layers");
        cfg.relay_only = true;
        cfg.forced_span = std::make_pair(0, 0);
    }
    cfg.node.listen = args.str("--listen", "0.0.0.0:7001");
    const char* home = std::getenv("HOME");
    cfg.node.key_file = args.str("--key", std::string(home ? home : ".") + "/.cache/llm-node/node.key");
    cfg.node.threads = thread_count(args);
    cfg.node.max_sessions = int(args.integer("--max-sessions", cfg.node.max_sessions));
    const int64_t mib = args.integer("--max-memory", 0);
    if (mib < 0) throw UsageError("--max-memory must be >= 0");
    cfg.max_memory = uint64_t(mib) << 20;
    cfg.recheck = std::chrono::seconds(args.integer("--recheck", 60));
    if (cfg.recheck.count() <= 0) throw UsageError("--recheck must be > 0");
    if (args.has("--advertise")) {
        cfg.advertise = args.str("--advertise");
        const auto colon = cfg.advertise.rfind(':');
        if (colon == std::string::npos || colon == 0 || std::atoi(cfg.advertise.c_str() + colon + 1) <= 0 ||
            std::atoi(cfg.advertise.c_str() + colon + 1) > 65535)
            throw UsageError("--advertise wants HOST:PORT, got '" + cfg.advertise + "'");
    }
    cfg.relay = args.str("--relay");
    cfg.node.allow_private_hops = args.has("--allow-private-hops");
    cfg.node.relay_slots = int(args.integer("--relay-slots", args.has("--relay-only") ? 32 : 8));
    if (cfg.node.relay_slots < 0) throw UsageError("--relay-slots must be >= 0");
    cfg.dht = dht_config(args);
    cfg.node.swarm_key = cfg.dht.swarm_key;  // private swarm: the node's links prove the key too
    cfg.weights_dir = args.str("--weights-dir", "");
    cfg.max_download = max_download(args);
    cfg.fetch_progress = weights_bar("fetching weights");

    node::SwarmNode sn(cfg);
    g_swarm_node = &sn;
    std::signal(SIGINT, on_start_signal);
    std::signal(SIGTERM, on_start_signal);
    sn.run();
    g_swarm_node = nullptr;
    return 0;
}

}  // namespace llmn::cli
