#include "node/swarm_node.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "engine/model_id.h"
#include "engine/layer_span.h"
#include "net/identity.h"
#include "net/probe.h"
#include "swarm/hardware_probe.h"
#include "swarm/span_choice.h"
#include "swarm/weights_join.h"
#include "model/partial_model.h"

namespace llmn::node {
namespace {

void log_line(const std::string& s) { std::fprintf(stderr, "[swarm] %s\n", s.c_str()); }

constexpr uint64_t kReserveBytes = 64ull << 20;  // process overhead kept out of the layer budget

}  // namespace

SwarmNode::SwarmNode(SwarmNodeConfig cfg) : cfg_(std::move(cfg)) {
    cfg_.dht.swarm_key = cfg_.node.swarm_key;  // one key for finding the swarm, its links and its torrents
    dht_ = std::make_unique<swarm::Dht>(cfg_.dht);
    weights_ = std::make_unique<swarm::Weights>(*dht_, cfg_.weights_dir, cfg_.node.swarm_key.has_value());
    weights_->set_download_limit(cfg_.max_download);
    if (cfg_.fetch_model) {
        const std::string id = net::to_hex(cfg_.fetch_model->data(), 8);
        log_line("joining model " + id + " with no local file: fetching its header from the swarm (BitTorrent port " +
                 std::to_string(weights_->port()) + ")");
        dht_->wait_bootstrapped(cfg_.settle_timeout);
        cfg_.node.model_path = swarm::open_from_swarm(*dht_, *weights_, *cfg_.fetch_model, cfg_.node.swarm_key,
                                                      cfg_.fetch_timeout, cfg_.fetch_progress);
        log_line("model " + id + ": header verified, kept in " + cfg_.node.model_path);
    }
    auto model = engine::Model::load(cfg_.node.model_path);
    const int n_layer = model->config().n_layer;
    if (cfg_.forced_span) {
        layers_wanted_ = cfg_.forced_span->second - cfg_.forced_span->first;
    } else {
        const swarm::Hardware hw = swarm::probe_hardware();
        uint64_t budget = hw.mem_available * 8 / 10;
        if (cfg_.max_memory > 0) budget = std::min(budget, cfg_.max_memory);
        const uint64_t layer_bytes = std::max<uint64_t>(1, model->span_weight_bytes(0, n_layer) / uint64_t(n_layer));
        const model::ModelConfig& mc = model->config();  // (no SpanWeights: a fetched file holds no layer yet)
        const uint64_t kv_per_layer =
            uint64_t(std::min(cfg_.node.max_ctx, 2048)) * (mc.n_embd_k_gqa() + mc.n_embd_v_gqa()) * sizeof(uint16_t);
        layers_wanted_ = swarm::layers_that_fit(budget, kReserveBytes, layer_bytes, kv_per_layer, n_layer);
        if (layers_wanted_ <= 0)
            throw std::runtime_error("not enough memory for one layer (" + std::to_string(budget >> 20) + " MiB budget, " +
                                     std::to_string((layer_bytes + kv_per_layer) >> 20) + " MiB per layer)");
        log_line("memory budget " + std::to_string(budget >> 20) + " MiB: " + std::to_string(layers_wanted_) + " of " +
                 std::to_string(n_layer) + " layers fit");
    }
    // A fetched file has no layer to time yet: measured on the first layer fetched (run()).
    if (!cfg_.relay_only && !cfg_.fetch_model) seconds_per_layer_ = swarm::measure_seconds_per_layer(model, cfg_.node.threads);
    identity_ = cfg_.node.key_file.empty() ? net::Identity::generate() : net::Identity::load_or_create(cfg_.node.key_file);
    cfg_.node.identity = identity_;  // the node's links and the record carry the same key
    model_id_ = engine::model_id(*model);  // a fetched file: its manifest's, checked against the id asked for
    if (cfg_.fetch_model && model_id_ != *cfg_.fetch_model) throw std::runtime_error("the fetched file is not the model asked for");
    // Seed what we hold: the whole file, or the verified pieces of a fetched one.
    if (!cfg_.fetch_model) {
        const auto t0 = std::chrono::steady_clock::now();
        torrent_ = weights_->share(cfg_.node.model_path, model_id_);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log_line("seeding model " + net::to_hex(model_id_.data(), model_id_.size()) + " as torrent " + torrent_->hex().substr(0, 16) + (s > 0.5 ? " (hashed in " + std::to_string(int(s)) + " s)" : ""));
    } else {
        torrent_ = weights_->torrent_of(model_id_);
    }
    if (torrent_) {
        cfg_.node.torrent = torrent_->bytes();
        cfg_.node.torrent_port = weights_->port();
    }
}

void SwarmNode::fetch_span(std::pair<int, int> span) {
    if (!cfg_.fetch_model || cfg_.relay_only || span.second <= span.first) return;
    auto model = engine::Model::load(cfg_.node.model_path);
    const auto names = model::tensors_needed(model->file(), span.first, span.second, false);
    const auto before = weights_->stats(model_id_);
    const auto t0 = std::chrono::steady_clock::now();
    weights_->fetch(model_id_, names, cfg_.fetch_timeout, cfg_.fetch_progress);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto after = weights_->settled_stats(model_id_);
    const uint64_t got = after.downloaded - before.downloaded;
    uint64_t span_bytes = 0;
    for (const auto& n : names) span_bytes += model->file().tensor(n)->nbytes;
    log_line("fetched layers " + std::to_string(span.first) + ":" + std::to_string(span.second) + ": " +
             std::to_string(got >> 10) + " KiB downloaded for " + std::to_string(span_bytes >> 10) + " KiB of tensors in " +
             std::to_string(s).substr(0, 5) + " s, all verified (" + std::to_string(after.hash_failures) + " pieces failed their hash, " +
             std::to_string(after.banned_peers) + " peers banned)");
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  ",\"fetched\":{\"span\":\"%d:%d\",\"downloaded\":%llu,\"total_downloaded\":%llu,\"span_bytes\":%llu,"
                  "\"file_bytes\":%llu,\"piece_size\":%u,\"hash_failures\":%d,\"banned_peers\":%d,\"seconds\":%.3f,"
                  "\"redundant\":%llu}",
                  span.first, span.second, (unsigned long long)got, (unsigned long long)after.downloaded,
                  (unsigned long long)span_bytes, (unsigned long long)model->file().file_size(), after.piece_size,
                  after.hash_failures, after.banned_peers, s,
                  (unsigned long long)(after.redundant_bytes - before.redundant_bytes));
    last_fetch_json_ = buf;  // goes with the next "listening" line on stdout
}

SwarmNode::~SwarmNode() { stop(); }

std::string SwarmNode::address() const { return advertised_; }

void SwarmNode::stop() {
    stopping_ = true;
    if (weights_) weights_->cancel();  // a fetch in progress ends at once
    if (node_) node_->stop();
}

std::pair<int, int> SwarmNode::choose_span(int k, std::optional<std::pair<int, int>> current) {
    auto model = engine::Model::load(cfg_.node.model_path);
    const int n_layer = model->config().n_layer;
    std::vector<swarm::SpanRecord> records;
    std::string seen;
    const auto peers = other_peers();
    for (const net::ProbedNode& p : net::probe_nodes(peers, std::chrono::milliseconds(2000), cfg_.node.swarm_key))
        if (p.identity != identity_->public_key() && p.info.model_id == model_id_ && p.info.n_layer == uint32_t(n_layer)) {
            records.push_back({int(p.info.span_start), int(p.info.span_end), p.info.milli_tokens_per_s / 1000.0});
            seen += " " + p.address.substr(0, 24) + "=" + std::to_string(p.info.span_start) + ":" + std::to_string(p.info.span_end);
        }
    const double own = seconds_per_layer_ > 0 ? 1.0 / (seconds_per_layer_ * k) : 1e9;  // unmeasured: no move
    const auto others_cov = swarm::layer_coverage(records, n_layer);  // without us
    const int best = swarm::choose_span_start(others_cov, k);
    if (std::getenv("LLM_NODE_SWARM_DEBUG"))
        log_line("re-check: " + std::to_string(peers.size()) + " peers on the DHT, " + std::to_string(records.size()) +
                 " of this model:" + seen + "; best window starts at " + std::to_string(best));
    if (current && !swarm::should_move(others_cov, current->first, k, own, best)) return *current;
    return {best, best + k};
}

namespace {
// When the span is re-checked: twice early (nodes that started together all
// saw an empty swarm; random times let one move at a time), then every
// `recheck` with jitter.
std::chrono::milliseconds recheck_delay(int round, std::chrono::seconds recheck, std::mt19937& rng) {
    using std::chrono::milliseconds;
    const auto every = std::chrono::duration_cast<milliseconds>(recheck);
    const milliseconds early = round == 0 ? milliseconds(2000 + rng() % 6000) : milliseconds(6000 + rng() % 6000);
    if (round < 2) return std::min(early, every);
    return every + milliseconds(rng() % std::max<uint64_t>(1, uint64_t(every.count() / 4)));
}
}  // namespace

void SwarmNode::run() {
    auto model = engine::Model::load(cfg_.node.model_path);
    const int n_layer = model->config().n_layer;
    const int k = std::min(layers_wanted_, n_layer);
    std::optional<std::pair<int, int>> span = cfg_.forced_span;
    // See the swarm before choosing (bounded): a span chosen on an empty view
    // collides with every node that started at the same time.
    dht_->wait_bootstrapped(cfg_.settle_timeout);
    if (!span) std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 1500));
    std::string listen = cfg_.node.listen;
    bool settled = false;
    while (!stopping_) {
        if (!span) span = choose_span(k, std::nullopt);
        try {
            fetch_span(*span);  // a fetched model: the span's layers verified before anyone is told we serve them
        } catch (const swarm::FetchError&) {
            if (stopping_) return;  // told to stop while fetching: what arrived is kept for the next start
            throw;
        }
        if (seconds_per_layer_ <= 0 && !cfg_.relay_only)
            seconds_per_layer_ = swarm::measure_seconds_per_layer(model, cfg_.node.threads, span->first);
        NodeConfig nc = cfg_.node;
        nc.span_start = span->first;
        nc.span_end = span->second;
        nc.listen = listen;
        nc.relay_only = cfg_.relay_only;
        nc.tokens_per_s = nc.relay_only ? 0.0 : 1.0 / (seconds_per_layer_ * (span->second - span->first));
        node_ = std::make_unique<Node>(nc);
        bound_ = node_->listen_address();
        listen = bound_;  // keep the port across moves: it is what we announce
        span_start_ = span->first;
        span_end_ = span->second;
        std::thread serving([this] { node_->run(); });
        if (!settled) {
            settle_reachability();
            settled = true;
        } else if (reach_ == uint8_t(net::Reach::relayed) && !relay_.empty()) {
            node_->use_relay(relay_);  // a new node process: register again
        }
        node_->set_reach(reach_);
        // A relayed node is reached through its relay's listing, not the DHT.
        if (reach_ == uint8_t(net::Reach::relayed)) {
            dht_->withdraw(model_id_);
            dht_->withdraw(swarm::catalog_id());
        } else {
            const uint16_t port = uint16_t(std::stoi(advertised_.substr(advertised_.rfind(':') + 1)));
            const std::string ip = advertised_.substr(0, advertised_.rfind(':'));
            dht_->announce(model_id_, port, ip);
            dht_->announce_later(swarm::catalog_id(), port, ip, std::chrono::milliseconds(8000 + rng_() % 4000));  // `llm-node models --swarm` lists what the swarm serves
        }
        swarm::NodeRecord rec;
        rec.address = advertised_;
        rec.span_start = uint32_t(span->first);
        rec.span_end = uint32_t(span->second);
        rec.n_layer = uint32_t(n_layer);
        rec.model_id = model_id_;
        rec.tokens_per_s = float(nc.tokens_per_s);
        rec.free_sessions = uint32_t(nc.max_sessions);
        rec.version = "llm-node/0.1";
        rec.expires_unix = uint64_t(std::time(nullptr)) + 3600;
        rec.sign(*identity_);
        if (may_publish()) dht_->publish(rec, *identity_);
        if (nc.relay_only) log_line("relaying onion circuits on " + advertised_);
        else log_line("serving layers " + std::to_string(span->first) + ":" + std::to_string(span->second) + " of " +
                 std::to_string(n_layer) + " on " + bound_ + " (" + std::to_string(int(nc.tokens_per_s)) + " tok/s measured)");
        std::printf("{\"listening\":\"%s\",\"address\":\"%s\",\"reach\":\"%s\",\"node_id\":\"%s\",\"model_id\":\"%s\",\"span\":\"%d:%d\"%s}\n",
                    bound_.c_str(), advertised_.c_str(), net::reach_name(reach_), node_->node_id().c_str(),
                    net::to_hex(model_id_.data(), model_id_.size()).c_str(), span->first, span->second,
                    last_fetch_json_.c_str());
        last_fetch_json_.clear();
        std::fflush(stdout);

        bool move = false;
        for (int round = 0; !stopping_ && !move; ++round) {
            for (auto until = std::chrono::steady_clock::now() + recheck_delay(round, cfg_.recheck, rng_);
                 !stopping_ && std::chrono::steady_clock::now() < until;)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (stopping_) continue;
            if (keep_reachable()) break;  // a new address: announce and publish it with a fresh node
            if (cfg_.forced_span) continue;
            const auto next = choose_span(k, span);
            if (next != *span) {
                try {
                    fetch_span(next);  // still serving the old span meanwhile
                } catch (const std::exception& e) {
                    log_line("staying on layers " + std::to_string(span->first) + ":" + std::to_string(span->second) +
                             ": cannot fetch " + std::to_string(next.first) + ":" + std::to_string(next.second) + ": " + e.what());
                    continue;
                }
                log_line("moving to layers " + std::to_string(next.first) + ":" + std::to_string(next.second) + " where the swarm is weaker");
                span = next;
                move = true;
            }
        }
        node_->stop();
        serving.join();
        node_.reset();
    }
}

}  // namespace llmn::node
