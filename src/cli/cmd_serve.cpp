// llm-node serve: run a node that serves one layer span of a model.
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "model/model_store.h"
#include "swarm/hardware_probe.h"
#include "cli/progress.h"
#include "cli/swarm_flags.h"
#include "engine/layer_span.h"
#include "node/node.h"

namespace llmn::cli {
namespace {

node::Node* g_node = nullptr;
extern "C" void on_signal(int) {
    if (g_node) g_node->stop();
}

}  // namespace

int cmd_serve(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file"},
               {{"--layers"}, true, "span a:b to serve (default: all layers)"},
               {{"--relay-only"}, false, "only relay onion circuits: load no layers"},
               {{"--listen"}, true, "host:port (default 127.0.0.1:7001; port 0 picks one)"},
               {{"--key"}, true, "identity key file (default ~/.cache/llm-node/node.key)"},
               {{"-t", "--threads"}, true, "compute threads (default: all cores)"},
               {{"--max-sessions"}, true, "concurrent sessions (default 64)"},
               {{"--max-memory"}, true, "MiB of KV cache over all sessions (default 8192)"},
               {{"--max-ctx"}, true, "positions per session (default 4096)"},
               {{"--idle-timeout"}, true, "seconds before an idle session is dropped (default 300)"},
               {{"--relay"}, true, "HOST:PORT of a relay to serve through (this node cannot be reached: it is behind NAT)"},
               {{"--relay-slots"}, true, "nodes behind NAT this node relays at once (default 8; 0: none)"},
               {{"--relay-links"}, true, "spliced links a relay gives each relayed node (default 16)"},
               {{"--relay-mibps"}, true, "MiB/s a relay gives each relayed node, each way (default 16)"},
               {{"--allow-private-hops"}, false, "let any peer name next hops on private addresses (10/8, 172.16/12, 192.168/16, fc00::/7); LAN peers always may"},
               {{"--punch-ms"}, true, "links through relays try a direct connection for this long (default 1500; 0: never)"},
               {{"--swarm-key"}, true, "private swarm: FILE of 32 random bytes (or 64 hex digits); only peers with it may connect "
                                       "(make one with: head -c 32 /dev/urandom > swarm.key)"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node serve -m MODEL [--layers a:b] [--listen HOST:PORT] [options]\n%s", args.help().c_str());
        return 0;
    }
    node::NodeConfig cfg;
    cfg.model_path = args.str("-m");
    if (cfg.model_path.empty()) throw UsageError("no model given (-m MODEL.gguf)");
    cfg.model_path = model::resolve_model(cfg.model_path);  // a file, a model name or an Ollama tag
    if (args.has("--layers")) {
        const std::string s = args.str("--layers");
        const auto colon = s.find(':');
        char* end = nullptr;
        if (colon == std::string::npos) throw UsageError("--layers wants a:b, got '" + s + "'");
        cfg.span_start = int(std::strtol(s.c_str(), &end, 10));
        if (end != s.c_str() + colon) throw UsageError("--layers wants a:b, got '" + s + "'");
        cfg.span_end = int(std::strtol(s.c_str() + colon + 1, &end, 10));
        if (*end != '\0' || cfg.span_end <= cfg.span_start || cfg.span_start < 0) throw UsageError("--layers wants a:b with a < b, got '" + s + "'");
    }
    cfg.listen = args.str("--listen", "127.0.0.1:7001");
    const char* home = std::getenv("HOME");
    cfg.key_file = args.str("--key", std::string(home ? home : ".") + "/.cache/llm-node/node.key");
    cfg.threads = thread_count(args);
    cfg.max_sessions = int(args.integer("--max-sessions", cfg.max_sessions));
    cfg.max_memory = uint64_t(args.integer("--max-memory", int64_t(cfg.max_memory >> 20))) << 20;
    cfg.max_ctx = int(args.integer("--max-ctx", cfg.max_ctx));
    cfg.idle_timeout = std::chrono::seconds(args.integer("--idle-timeout", cfg.idle_timeout.count()));
    if (cfg.max_sessions <= 0 || cfg.max_ctx <= 0 || cfg.idle_timeout.count() <= 0) throw UsageError("limits must be > 0");
    cfg.swarm_key = swarm_key(args);
    cfg.punch_window = std::chrono::milliseconds(args.integer("--punch-ms", cfg.punch_window.count()));
    if (cfg.punch_window.count() < 0) throw UsageError("--punch-ms must be >= 0");
    cfg.allow_private_hops = args.has("--allow-private-hops");
    cfg.relay_slots = int(args.integer("--relay-slots", args.has("--relay-only") ? 32 : cfg.relay_slots));
    cfg.relay_links_per_node = int(args.integer("--relay-links", cfg.relay_links_per_node));
    const int64_t mibps = args.integer("--relay-mibps", cfg.relay_bytes_per_s >> 20);
    if (cfg.relay_slots < 0 || cfg.relay_links_per_node <= 0 || mibps <= 0 || mibps > 4095)
        throw UsageError("--relay-slots must be >= 0, --relay-links > 0 and --relay-mibps 1..4095");
    cfg.relay_bytes_per_s = uint32_t(mibps) << 20;
    const std::string relay = args.str("--relay");
    if (!relay.empty()) cfg.relay_slots = 0;  // relayed itself: relays no one

    cfg.relay_only = args.has("--relay-only");
    if (cfg.relay_only && args.has("--layers")) throw UsageError("--relay-only serves no layers: drop --layers");
    if (!cfg.relay_only) {
        // Advertised in NODE_INFO (route planning, the status page): one layer timed, times the span.
        auto model = engine::Model::load(cfg.model_path);
        const int end = cfg.span_end == 0 ? model->config().n_layer : cfg.span_end;
        const double spl = swarm::measure_seconds_per_layer(model, cfg.threads);
        if (spl > 0 && end > cfg.span_start) cfg.tokens_per_s = 1.0 / (spl * (end - cfg.span_start));
    }
    node::Node node(cfg);
    // Warm the span's weights before telling anyone we are listening, so the
    // first session does not wait on the disk.
    if (!cfg.relay_only) {
        const engine::SpanWeights& span = node.weights();
        prefault_with_progress(span.model(), {span.start(), span.end(), false},
                               "loading layers " + std::to_string(span.start()) + ":" + std::to_string(span.end()));
    }
    g_node = &node;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::string address = node.listen_address();
    if (!relay.empty()) {
        node.set_reach(uint8_t(net::Reach::relayed));
        node.use_relay(relay);
        address = node.node_id() + "@" + relay;
    }
    // One line on stdout so scripts (and tests) learn the bound port and the id.
    std::printf("{\"listening\":\"%s\",\"address\":\"%s\",\"node_id\":\"%s\"}\n", node.listen_address().c_str(), address.c_str(),
                node.node_id().c_str());
    std::fflush(stdout);
    if (cfg.relay_only)
        std::fprintf(stderr, "[node] relaying onion circuits of %s on %s%s\n", cfg.model_path.c_str(), node.listen_address().c_str(),
                     cfg.swarm_key ? " (private swarm)" : "");
    else
        std::fprintf(stderr, "[node] serving %s layers %d:%d on %s%s\n", cfg.model_path.c_str(), cfg.span_start,
                     cfg.span_end == 0 ? -1 : cfg.span_end, node.listen_address().c_str(), cfg.swarm_key ? " (private swarm)" : "");
    std::thread watch;
    if (!relay.empty())  // says once whether the relay took us (the io thread answers once run() starts)
        watch = std::thread([&node, relay] {
            for (int i = 0; i < 100 && g_node; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                const auto st = node.relay_state();
                if (!st.registered && st.error.empty()) continue;
                if (st.registered) std::fprintf(stderr, "[node] reached through relay %s (it sees this node at %s)\n", relay.c_str(), st.observed.c_str());
                else std::fprintf(stderr, "[node] relay %s did not take this node: %s\n", relay.c_str(), st.error.c_str());
                return;
            }
        });
    node.run();
    g_node = nullptr;
    if (watch.joinable()) watch.join();
    std::fprintf(stderr, "[node] stopped\n");
    return 0;
}

}  // namespace llmn::cli
