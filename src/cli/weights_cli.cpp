#include "cli/weights_cli.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/swarm_flags.h"
#include "engine/model_id.h"
#include "model/model_store.h"
#include "model/partial_model.h"
#include "swarm/dht.h"
#include "swarm/weights_join.h"

namespace llmn::cli {
namespace {

volatile std::sig_atomic_t g_share_stop = 0;
extern "C" void on_share_signal(int) { g_share_stop = 1; }

std::string id_hex(const net::Key32& k) { return net::to_hex(k.data(), k.size()); }

std::string weights_dir(const Args& args) { return args.str("--weights-dir", ""); }

// A DHT for a command that does not serve (client, listing, share): any port.
swarm::Dht::Config client_dht(const Args& args) {
    auto dc = dht_config(args);
    if (!args.has("--dht-listen")) dc.listen = "0.0.0.0:0";
    return dc;
}

}  // namespace

uint64_t max_download(const Args& args) {
    if (!args.has("--max-download")) return 0;
    const std::string s = args.str("--max-download");
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    uint64_t mult = 1;
    const std::string unit = s.substr(used);
    if (unit == "K" || unit == "k") mult = 1ull << 10;
    else if (unit == "M" || unit == "m") mult = 1ull << 20;
    else if (unit == "G" || unit == "g") mult = 1ull << 30;
    else if (!unit.empty()) used = 0;
    if (used == 0 || !(v > 0) || v * double(mult) > 1e12) throw UsageError("--max-download wants bytes/s like 500K, 20M or 1G, got '" + s + "'");
    return std::max<uint64_t>(1, uint64_t(v * double(mult)));
}

swarm::WeightsProgress weights_bar(const std::string& label) {
    auto bar = std::make_shared<ProgressBar>(label, ProgressBar::Unit::bytes);
    return [bar](const swarm::WeightsStats& s) {
        if (s.wanted_bytes) bar->update(s.wanted_done, s.wanted_bytes);
        if (s.wanted_bytes && s.wanted_done == s.wanted_bytes) bar->finish();
    };
}

std::string client_model(const Args& args, const std::string& spec) {
    const auto id = swarm::parse_model_id(spec);
    std::error_code ec;
    if (!id || std::filesystem::exists(spec, ec)) return spec;
    swarm::Dht dht(client_dht(args));
    swarm::Weights weights(dht, weights_dir(args), swarm_key(args).has_value());
    weights.set_download_limit(max_download(args));
    std::fprintf(stderr, "[weights] model %s is not on this machine: fetching its tokenizer, embeddings and head from the swarm\n",
                 spec.substr(0, 16).c_str());
    dht.wait_bootstrapped(std::chrono::seconds(10));
    const std::string path = swarm::open_from_swarm(dht, weights, *id, swarm_key(args), std::chrono::seconds(300));
    const auto model = engine::Model::load(path);
    const auto names = model::tensors_needed(model->file(), 0, 0, true);
    weights.fetch(*id, names, std::chrono::seconds(900), weights_bar("fetching the client's weights"));
    const swarm::WeightsStats st = weights.settled_stats(*id);
    uint64_t parts = 0;
    for (const auto& n : names) parts += model->file().tensor(n)->nbytes;
    std::fprintf(stderr, "[weights] fetched %llu KiB for %llu KiB of client tensors (%llu KiB file), %d pieces failed their hash, %d peers banned\n",
                 (unsigned long long)(st.downloaded >> 10), (unsigned long long)(parts >> 10),
                 (unsigned long long)(model->file().file_size() >> 10), st.hash_failures, st.banned_peers);
    return path;
}

int cmd_share(int argc, char** argv) {
    std::vector<Flag> flags = {{{"--json"}, false, "print the result as one JSON object"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : swarm_flags()) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node share FILE.gguf [options]\n"
                    "Seeds a local GGUF to the swarm as a torrent and prints its model id, until Ctrl-C;\n"
                    "nodes started with that id fetch from it (see README: join with nothing but a model id).\n%s",
                    args.help().c_str());
        return 0;
    }
    if (args.positional().size() != 1) throw UsageError("give one GGUF file to share");
    const std::string path = model::resolve_model(args.positional().front());
    const auto model = engine::Model::load(path);
    const net::Key32 id = engine::model_id(*model);
    if (model::is_partial(path)) throw UsageError(path + " was fetched in part from the swarm: `llm-node start` seeds what it holds");
    auto dc = dht_config(args);
    swarm::Dht dht(dc);
    swarm::Weights weights(dht, weights_dir(args), dc.swarm_key.has_value());
    const swarm::TorrentId tid = weights.share(path, id, !dc.swarm_key.has_value());
    if (args.has("--json"))
        std::printf("{\"model_id\":\"%s\",\"torrent\":\"%s\",\"port\":%u,\"file\":%s}\n", id_hex(id).c_str(), tid.hex().c_str(),
                    unsigned(weights.port()), json_string(path).c_str());
    else
        std::printf("%s\n", id_hex(id).c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "[weights] seeding %s as torrent %s on port %u; Ctrl-C to stop\n", path.c_str(), tid.hex().substr(0, 16).c_str(),
                 unsigned(weights.port()));
    std::signal(SIGINT, on_share_signal);
    std::signal(SIGTERM, on_share_signal);
    while (!g_share_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto st = weights.stats(id);
    std::fprintf(stderr, "[weights] stopped after sending %llu KiB\n", (unsigned long long)(st.uploaded >> 10));
    return 0;
}

namespace {
// A peer's text for a terminal table: no control bytes (they could move the cursor or recolor it).
std::string printable(const std::string& s, size_t max) {
    std::string out = s.substr(0, max);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out;
}
}  // namespace

int list_swarm_models(const Args& args) {
    swarm::Dht dht(client_dht(args));
    dht.wait_bootstrapped(std::chrono::seconds(10));
    const auto addrs = dht.peers(swarm::catalog_id(), std::chrono::milliseconds(5000));
    const auto nodes = net::probe_nodes(addrs, std::chrono::milliseconds(3000), swarm_key(args));
    struct Row {
        net::NodeInfo info;
        int nodes = 0, seeders = 0;
        std::vector<bool> covered;
    };
    std::map<net::Key32, Row> rows;
    for (const auto& n : nodes) {
        Row& r = rows[n.info.model_id];
        if (r.nodes++ == 0) {
            r.info = n.info;
            r.covered.assign(std::min<uint32_t>(n.info.n_layer, 4096), false);
        }
        if (!swarm::torrent_peer(n).empty()) ++r.seeders;
        for (uint32_t l = n.info.span_start; l < n.info.span_end && l < r.covered.size(); ++l) r.covered[l] = true;
    }
    const bool json = args.has("--json");
    if (!json) std::printf("%-64s  %-24s  %-8s  %10s  %5s  %7s  %8s\n", "MODEL ID", "NAME", "QUANT", "SIZE", "NODES", "SEEDERS", "COVERAGE");
    for (const auto& [id, r] : rows) {
        const size_t cov = size_t(std::count(r.covered.begin(), r.covered.end(), true));
        const std::string coverage = std::to_string(cov) + "/" + std::to_string(r.covered.size());
        if (json)
            std::printf("{\"model_id\":\"%s\",\"name\":%s,\"quantization\":%s,\"size_bytes\":%llu,\"n_layer\":%u,\"nodes\":%d,"
                        "\"seeders\":%d,\"layers_covered\":%zu}\n",
                        id_hex(id).c_str(), json_string(r.info.model_name).c_str(), json_string(r.info.model_quant).c_str(),
                        (unsigned long long)r.info.model_bytes, r.info.n_layer, r.nodes, r.seeders, cov);
        else
            std::printf("%-64s  %-24s  %-8s  %8.1f MB  %5d  %7d  %8s\n", id_hex(id).c_str(), printable(r.info.model_name, 24).c_str(),
                        printable(r.info.model_quant, 8).c_str(), double(r.info.model_bytes) / 1e6, r.nodes, r.seeders, coverage.c_str());
    }
    std::fprintf(stderr, "[swarm] %zu nodes in the catalog, %zu answered, %zu models\n", addrs.size(), nodes.size(), rows.size());
    return 0;
}

}  // namespace llmn::cli
