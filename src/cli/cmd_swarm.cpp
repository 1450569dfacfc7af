// llm-node swarm: what the swarm serves for a model: its nodes, which layers
// each covers, their measured throughput, and a picture of the coverage.
#include <algorithm>
#include <cstdio>

#include "engine/model_id.h"
#include "cli/commands.h"
#include "model/model_store.h"
#include "cli/swarm_flags.h"
#include "net/identity.h"
#include "net/probe.h"

namespace llmn::cli {

int cmd_swarm(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF model file (its id names the swarm)"},
                               {{"--timeout"}, true, "seconds to look for nodes (default 5)"},
                               {{"--json"}, false, "one JSON object per node"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : swarm_flags()) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node swarm -m MODEL [--bootstrap host:port] [--json]\n%s", args.help().c_str());
        return 0;
    }
    std::string path = args.str("-m");
    if (path.empty() && !args.positional().empty()) path = args.positional().front();
    if (path.empty()) throw UsageError("no model given (-m MODEL.gguf)");
    const auto model = engine::Model::load(model::resolve_model(path));
    const int n_layer = model->config().n_layer;
    const net::Key32 model_id = engine::model_id(*model);
    auto dc = dht_config(args);
    if (!args.has("--dht-listen")) dc.listen = "0.0.0.0:0";
    swarm::Dht dht(dc);
    if (std::getenv("LLM_NODE_SWARM_DEBUG")) {
        const auto ih = swarm::Dht::swarm_hash(model_id, dc.swarm_key);
        std::fprintf(stderr, "[swarm] info-hash %s\n", net::to_hex(ih.data(), ih.size()).c_str());
    }
    const auto timeout = std::chrono::milliseconds(1000 * args.integer("--timeout", 5));
    std::vector<net::ProbedNode> nodes;
    const std::vector<std::string> found = dht.peers(model_id, timeout);
    const net::ProbeReport report = net::probe_swarm(found, std::chrono::milliseconds(2000), dc.swarm_key);
    for (const auto& p : report.nodes)
        if (p.info.model_id == model_id) nodes.push_back(p);
    if (!report.failed.empty() || found.empty()) std::fprintf(stderr, "[swarm] %s\n", report.summary(found.size()).c_str());
    std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.info.span_start < b.info.span_start; });
    if (args.has("--json")) {
        for (const auto& p : nodes)
            std::printf("{\"node_id\":\"%s\",\"address\":%s,\"span\":[%u,%u],\"tokens_per_s\":%.3f,\"free_sessions\":%u,\"rtt_ms\":%.2f,"
                        "\"reach\":\"%s\",\"relays\":%zu,\"relay_free\":%u,\"relay_links\":%u,\"relay_bytes_per_s\":%u}\n",
                        net::to_hex(p.identity.data(), 32).c_str(), json_string(p.address).c_str(), p.info.span_start, p.info.span_end,
                        p.info.milli_tokens_per_s / 1000.0, p.info.free_sessions, p.rtt_seconds * 1000, net::reach_name(p.info.reach),
                        p.info.relayed.size() / 32, p.info.relay_free, p.info.relay_links, p.info.relay_bytes_per_s);
        return 0;
    }
    std::printf("model %s (%s, %d layers), swarm %s...: %zu nodes\n\n", path.c_str(), model->config().spec.family.c_str(), n_layer,
                net::to_hex(model_id.data(), 8).c_str(), nodes.size());
    std::vector<int> cov(n_layer, 0);
    for (const auto& p : nodes) {
        std::string bar(size_t(n_layer), '.');
        for (uint32_t l = p.info.span_start; l < p.info.span_end && l < uint32_t(n_layer); ++l) bar[l] = '#', ++cov[l];
        // A relayed node's address is "id@relay": show "via relay" (its id is in the last column).
        const auto at = p.address.find('@');
        const std::string where = at == std::string::npos ? p.address : "via " + p.address.substr(at + 1);
        std::string relaying;
        if (!p.info.relayed.empty() || p.info.relay_free > 0)
            relaying = "  relays " + std::to_string(p.info.relayed.size() / 32) + " (" + std::to_string(p.info.relay_free) + " free; " +
                       std::to_string(p.info.relay_links) + " links, " + std::to_string(p.info.relay_bytes_per_s >> 20) + " MiB/s each)";
        std::printf("%-26s %s  layers %3u:%-3u %8.1f tok/s  %3u free  %-7s %s...%s\n", where.c_str(), bar.c_str(), p.info.span_start,
                    p.info.span_end, p.info.milli_tokens_per_s / 1000.0, p.info.free_sessions, net::reach_name(p.info.reach),
                    net::to_hex(p.identity.data(), 6).c_str(), relaying.c_str());
    }
    std::string line;
    for (int c : cov) line += c == 0 ? '!' : c > 9 ? '+' : char('0' + c);
    std::printf("%-26s %s  (nodes per layer; ! = uncovered)\n", "coverage", line.c_str());
    return std::count(cov.begin(), cov.end(), 0) == 0 ? 0 : 1;
}

}  // namespace llmn::cli
