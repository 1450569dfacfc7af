#include "client/resilient_session.h"

#include <algorithm>
#include <cstdio>

#include "engine/model_id.h"
#include "client/circuit_session.h"

#include "net/identity.h"
#include "net/probe.h"

namespace llmn::client {

using Clock = std::chrono::steady_clock;

std::vector<Candidate> probe_nodes(const std::vector<std::string>& addresses, const engine::Model& model,
                                   std::chrono::milliseconds timeout, std::optional<net::SwarmKey> swarm_key, std::string* why) {
    net::ensure_sodium();
    const net::Key32 model_id = engine::model_id(model);
    std::vector<Candidate> found;
    const net::ProbeReport report = net::probe_swarm(addresses, timeout, swarm_key);
    if (why) {
        *why = report.summary(addresses.size());
        size_t other_model = 0;
        for (const net::ProbedNode& p : report.nodes) other_model += p.info.model_id != model_id;
        if (other_model) *why += "; " + std::to_string(other_model) + " serve another model";
    }
    for (const net::ProbedNode& p : report.nodes) {
        if (p.info.model_id != model_id) continue;
        Candidate c;
        c.address = p.address;
        c.span_start = int(p.info.span_start);
        c.span_end = int(p.info.span_end);
        c.free_sessions = int(p.info.free_sessions);
        c.rtt_seconds = p.rtt_seconds;
        const int layers = c.span_end - c.span_start;
        if (p.info.milli_tokens_per_s > 0 && layers > 0) c.seconds_per_layer = 1000.0 / p.info.milli_tokens_per_s / layers;
        found.push_back(c);
    }
    return found;
}

ResilientSession::ResilientSession(std::shared_ptr<const engine::Model> model, std::function<std::vector<std::string>()> discover,
                                   ResilientConfig cfg, tensor::ThreadPool& pool)
    : model_(std::move(model)), discover_(std::move(discover)), cfg_(cfg), pool_(pool) {
    // A hop that fails while the first route is being opened (it died or
    // stalled since the probe) is routed around like a failure mid-generation;
    // "no route at all" is reported at once.
    for (int tries = 0;; ++tries) {
        try {
            rebuild();
            return;
        } catch (const RemoteError& e) {
            if (e.hop().empty() || tries >= cfg_.max_failovers) throw;
            banned_.insert(e.hop());
            remote_.reset();
        }
    }
}

int ResilientSession::n_vocab() const { return model_->config().n_vocab; }

void ResilientSession::rebuild() {
    remote_.reset();
    std::string found;
    const auto candidates = probe_nodes(discover_(), *model_, cfg_.probe_timeout, cfg_.remote.swarm_key, &found);
    PlannerConfig pc;
    pc.first_layer = cfg_.remote.local_layers;  // the layers below run in this process
    route_ = plan_route(candidates, model_->config().n_layer, banned_, pc);
    if (route_.empty() && !banned_.empty()) {
        // A banned node that answers the probe again (restarted, resumed) may
        // be what completes a route now: forget the bans rather than give up.
        banned_.clear();
        route_ = plan_route(candidates, model_->config().n_layer, banned_, pc);
    }
    if (route_.empty())
        throw RemoteError("no route covers layers " + std::to_string(pc.first_layer) + ":" + std::to_string(model_->config().n_layer) +
                          " (" + found + (banned_.empty() ? "" : "; " + std::to_string(banned_.size()) + " banned") + ")");
    if (cfg_.entry_relays > 0 || cfg_.exit_relays > 0) {
        // Relays: reachable nodes off the route, relay-only ones (no layers) first, then the fastest to reach.
        std::vector<Candidate> spare;
        for (const Candidate& c : candidates)
            if (!banned_.count(c.address) && std::find(route_.begin(), route_.end(), c.address) == route_.end()) spare.push_back(c);
        std::stable_sort(spare.begin(), spare.end(), [](const Candidate& a, const Candidate& b) {
            const bool ra = a.span_end == a.span_start, rb = b.span_end == b.span_start;
            return ra != rb ? ra : a.rtt_seconds < b.rtt_seconds;
        });
        const size_t need = size_t(cfg_.entry_relays > 0) + size_t(cfg_.exit_relays > 0);
        if (spare.size() < need)
            throw RemoteError("an onion circuit needs " + std::to_string(need) + " relay(s) off the route, the swarm has " +
                              std::to_string(spare.size()) + " (more nodes, or --relays 0)");
        CircuitPlan plan;
        plan.spans = route_;
        size_t next = 0;
        if (cfg_.entry_relays > 0) plan.entry_relay = spare[next++].address;
        if (cfg_.exit_relays > 0) plan.exit_relay = spare[next++].address;
        remote_ = std::make_unique<CircuitSession>(model_, plan, cfg_.remote, pool_);
    } else {
        remote_ = std::make_unique<RemoteSession>(model_, route_, cfg_.remote, pool_);
    }
    // Rebuild the KV caches on the new hops. The new session's local layers
    // start empty too and are recomputed batch by batch, so their cache holds
    // exactly what the lost session's did (nothing is run twice into one cache).
    std::vector<float> unused;
    for (const auto& batch : history_) remote_->eval(batch, unused);
}

void ResilientSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    if (n_past_ + int(ids.size()) > cfg_.remote.n_ctx)
        throw std::out_of_range("context full: " + std::to_string(n_past_ + ids.size()) + " tokens > n_ctx " +
                                std::to_string(cfg_.remote.n_ctx));
    for (;;) {
        try {
            if (!remote_) rebuild();
            remote_->eval(ids, logits, all_positions);
            history_.push_back(ids);
            n_past_ += int(ids.size());
            return;
        } catch (const RemoteError& e) {
            if (++failovers_ > cfg_.max_failovers) throw RemoteError(std::string("giving up after repeated failures: ") + e.what(), e.hop());
            const auto t0 = Clock::now();
            if (!e.hop().empty()) banned_.insert(e.hop());
            std::fprintf(stderr, "[client] %s; rerouting around %s\n", e.what(), e.hop().empty() ? "it" : e.hop().c_str());
            remote_.reset();
            try {
                rebuild();
            } catch (const RemoteError& again) {
                if (failovers_ >= cfg_.max_failovers) throw;
                if (!again.hop().empty()) banned_.insert(again.hop());
                remote_.reset();
                continue;
            }
            last_recovery_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
        }
    }
}

}  // namespace llmn::client
