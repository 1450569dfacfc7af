#include "client/resilient_session.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <cstdio>

#include "engine/model_id.h"
#include "client/audit_report.h"
#include "client/circuit_session.h"

#include "net/identity.h"
#include "net/probe.h"

namespace llmn::client {

using Clock = std::chrono::steady_clock;

namespace {

// The candidates of a probe report that serve our model; `why` as for probe_nodes.
std::vector<Candidate> candidates_of(const net::ProbeReport& report, size_t asked, const net::Key32& model_id, std::string* why) {
    if (why) {
        *why = report.summary(asked);
        size_t other_model = 0;
        for (const net::ProbedNode& p : report.nodes) other_model += p.info.model_id != model_id;
        if (other_model) *why += "; " + std::to_string(other_model) + " serve another model";
    }
    std::vector<Candidate> found;
    for (const net::ProbedNode& p : report.nodes) {
        if (p.info.model_id != model_id) continue;
        Candidate c;
        c.address = p.address;
        c.identity = p.identity;
        c.span_start = int(p.info.span_start);
        c.span_end = int(p.info.span_end);
        c.free_sessions = int(p.info.free_sessions);
        c.rtt_seconds = p.rtt_seconds;
        c.isa = p.info.isa;
        c.isa_set = p.info.isa_set;
        const int layers = c.span_end - c.span_start;
        // A claim, which the planner caps (route_planner.h): it never counts as faster than the median claim.
        if (p.info.milli_tokens_per_s > 0 && layers > 0) c.seconds_per_layer = 1000.0 / p.info.milli_tokens_per_s / layers;
        found.push_back(c);
    }
    return found;
}


// Addresses seen serving no layers (relay-only), in this process: the API
// server's later requests pick their directory among them.
std::mutex relays_mu;
std::set<std::string> relays_seen;

bool relay_only_seen(const std::string& address) {
    std::lock_guard<std::mutex> lock(relays_mu);
    return relays_seen.count(address) > 0;
}

void remember_relays(const net::ProbeReport& report) {
    std::lock_guard<std::mutex> lock(relays_mu);
    for (const net::ProbedNode& p : report.nodes)
        if (p.info.span_end == p.info.span_start && relays_seen.size() < 4096) relays_seen.insert(p.address);
}

}  // namespace

std::vector<Candidate> probe_nodes(const std::vector<std::string>& addresses, const engine::Model& model,
                                   std::chrono::milliseconds timeout, std::optional<net::SwarmKey> swarm_key, std::string* why) {
    net::ensure_sodium();
    return candidates_of(net::probe_swarm(addresses, timeout, swarm_key), addresses.size(), engine::model_id(model), why);
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
    if (auto* r = dynamic_cast<RemoteSession*>(remote_.get())) audited_before_ += r->positions_audited();
    if (remote_) verified_floor_ = std::min(n_past_, std::max(verified_floor_, remote_->verified()));
    remote_.reset();
    const bool circuit = cfg_.entry_relays > 0 || cfg_.exit_relays > 0;
    const std::vector<std::string> addresses = discover_();
    const net::Key32 model_id = engine::model_id(*model_);
    std::string found;
    net::ProbeReport report;
    std::string directory;
    if (circuit) {
        // Never contact a span node directly: one node, at random, looks at the
        // others for us and then serves at most as a relay (THREAT_MODEL.md).
        // Nodes known (from earlier reports in this process) to serve no layers go first:
        // a span node contacted here is lost as a span for this session.
        std::vector<std::string> known_relays, rest;
        for (const std::string& a : addresses)
            if (!banned_.count(a)) (relay_only_seen(a) ? known_relays : rest).push_back(a);
        std::shuffle(known_relays.begin(), known_relays.end(), rng_);
        std::shuffle(rest.begin(), rest.end(), rng_);
        std::vector<std::string> order = known_relays;
        order.insert(order.end(), rest.begin(), rest.end());
        for (size_t i = 0; i < order.size() && i < 3; ++i) {
            std::vector<std::string> others;
            for (const std::string& a : addresses)
                if (a != order[i]) others.push_back(a);
            contacted_.insert(order[i]);
            report = net::probe_through(order[i], others, cfg_.probe_timeout, cfg_.remote.swarm_key);
            if (!report.nodes.empty() && report.nodes.front().address == order[i]) {
                directory = order[i];
                break;
            }
        }
        remember_relays(report);
    } else {
        report = net::probe_swarm(addresses, cfg_.probe_timeout, cfg_.remote.swarm_key);
    }
    std::vector<Candidate> candidates = candidates_of(report, addresses.size(), model_id, &found);
    std::vector<Candidate> unrestricted = candidates;  // contacted nodes still as spans: the last resort below
    for (Candidate& c : unrestricted)
        if (auto it = measured_.find(c.address); it != measured_.end()) c.measured_seconds_per_layer = it->second;
    for (Candidate& c : candidates) {
        if (circuit && contacted_.count(c.address)) c.span_end = c.span_start;  // contacted directly: a relay at most
        if (auto it = measured_.find(c.address); it != measured_.end()) c.measured_seconds_per_layer = it->second;
    }
    PlannerConfig pc;
    pc.first_layer = cfg_.remote.local_layers;  // the layers below run in this process
    pc.trusted = cfg_.trusted_nodes;
    std::string why;
    auto plan = [&] { return plan_circuit(candidates, model_->config().n_layer, banned_, pc, cfg_.entry_relays > 0, cfg_.exit_relays > 0, rng_, &why); };
    std::optional<CircuitChoice> choice;
    if (!cfg_.initial_route.empty() && route_.empty() && !circuit) {
        bool found_all = true;
        for (const std::string& a : cfg_.initial_route)
            found_all = found_all && std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.address == a; });
        if (found_all) choice = CircuitChoice{cfg_.initial_route, "", ""};
    }
    if (!choice) choice = plan();
    if (!choice && !banned_.empty()) {
        // A banned node that answers the probe again (restarted, resumed) may
        // be what completes a route now: forget the bans rather than give up.
        banned_.clear();
        choice = plan();
    }
    if (!choice && circuit && !contacted_.empty()) {
        // A small swarm whose every route needs a node this client contacted: use it,
        // and say so (that node can tell the circuit is ours), rather than serve nothing.
        std::string ignored;
        choice = plan_circuit(unrestricted, model_->config().n_layer, banned_, pc, cfg_.entry_relays > 0, cfg_.exit_relays > 0, rng_, &ignored);
        if (choice)
            for (const std::string& a : choice->spans)
                if (contacted_.count(a))
                    std::fprintf(stderr, "[client] warning: every route needs %s as a span, and this client contacted it directly to learn "
                                         "the swarm: it can tell this circuit is yours (more nodes, or --relay-only ones, avoid this)\n",
                                 a.c_str());
    }
    if (!choice) {
        const std::string detail = found + (banned_.empty() ? "" : "; " + std::to_string(banned_.size()) + " banned");
        if (why.find("onion circuit") != std::string::npos) throw RemoteError(why + " (more nodes, or --relays 0)");
        throw RemoteError("no route covers layers " + std::to_string(pc.first_layer) + ":" + std::to_string(model_->config().n_layer) + " (" +
                          detail + ")");
    }
    route_ = choice->spans;
    RemoteConfig rc = cfg_.remote;
    for (const net::ProbedNode& p : report.nodes) rc.pinned[p.address] = p.identity;  // whoever answers there later must be the same node
    if (circuit) {
        CircuitPlan cp;
        cp.spans = route_;
        cp.entry_relay = choice->entry_relay;
        cp.exit_relay = choice->exit_relay;
        cp.known = report.nodes;
        // The relays meet this client: in a later rebuild of this session they serve no span.
        for (const std::string& r : {cp.entry_relay, cp.exit_relay})
            if (!r.empty()) contacted_.insert(r);
        remote_ = std::make_unique<CircuitSession>(model_, cp, rc, pool_);
    } else {
        if (rc.verify_rate > 0) rc.auditors = pick_auditors(unrestricted);
        remote_ = std::make_unique<RemoteSession>(model_, route_, rc, pool_);
    }
    // Rebuild the KV caches on the new hops. The new session's local layers
    // start empty too and are recomputed batch by batch, so their cache holds
    // exactly what the lost session's did (nothing is run twice into one cache).
    std::vector<float> unused;
    for (const auto& batch : history_) remote_->eval(batch, unused);
}

// What this client saw: a decode step's time over the route's layers, charged
// to every hop of the route (an upper bound for each). The planner prefers
// such measurements to what nodes claim.
void ResilientSession::note_speed(int n_tokens, double seconds) {
    if (n_tokens != 1 || route_.empty()) return;
    const double per_layer = seconds / std::max(1, model_->config().n_layer - cfg_.remote.local_layers);
    for (const std::string& a : route_) {
        auto [it, fresh] = measured_.emplace(a, per_layer);
        if (!fresh) it->second = 0.8 * it->second + 0.2 * per_layer;
    }
}

void ResilientSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    if (n_past_ + int(ids.size()) > cfg_.remote.n_ctx)
        throw std::out_of_range("context full: " + std::to_string(n_past_ + ids.size()) + " tokens > n_ctx " +
                                std::to_string(cfg_.remote.n_ctx));
    for (;;) {
        try {
            if (!remote_) rebuild();
            const auto t0 = Clock::now();
            remote_->eval(ids, logits, all_positions);
            note_speed(int(ids.size()), std::chrono::duration<double>(Clock::now() - t0).count());
            history_.push_back(ids);
            n_past_ += int(ids.size());
            return;
        } catch (const AuditMismatch& e) {
            caught_hop(e);
        } catch (const RemoteError& e) {
            if (++failovers_ > cfg_.max_failovers) throw RemoteError(std::string("giving up after repeated failures: ") + e.what(), e.hop());
            std::fprintf(stderr, "[client] %s; rerouting around %s\n", e.what(), e.hop().empty() ? "it" : e.hop().c_str());
            recover(e);
        }
    }
}

void ResilientSession::recover(const RemoteError& e) {
    const auto t0 = Clock::now();
    if (!e.hop().empty()) banned_.insert(e.hop());
    for (;;) {
        try {
            rebuild();
            break;
        } catch (const AuditMismatch& again) {
            caught_hop(again);  // while replaying: a second cheat on the new route
        } catch (const RemoteError& again) {
            if (++failovers_ > cfg_.max_failovers) throw;
            if (!again.hop().empty()) banned_.insert(again.hop());
        }
    }
    last_recovery_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
}

// A hop returned wrong hidden states: ban it, file the signed report, and
// continue from the last position every hop's replica confirmed, on a route
// without it. The caller (engine::generate) evaluates again from there.
void ResilientSession::caught_hop(const AuditMismatch& e) {
    ++caught_;
    if (caught_ > cfg_.max_failovers) throw RemoteError(std::string("giving up: too many hops caught returning wrong hidden states; last: ") + e.what(), e.hop());
    std::fprintf(stderr, "[verify] caught %s; continuing from position %d on a route without it\n", e.what(),
                 std::max(verified_floor_, std::min(e.pos(), remote_ ? remote_->verified() : 0)));
    if (!e.report().empty()) {
        if (save_audit_report(e.report())) std::fprintf(stderr, "[verify] signed report appended to %s\n", audit_reports_path().c_str());
    }
    const int keep = std::max(verified_floor_, std::min({e.pos(), n_past_, remote_ ? remote_->verified() : 0}));
    // Drop the unverified tail of the history (a batch may be cut in two).
    std::vector<std::vector<int32_t>> kept;
    int have = 0;
    for (auto& batch : history_) {
        if (have >= keep) break;
        const int take = std::min<int>(int(batch.size()), keep - have);
        kept.emplace_back(batch.begin(), batch.begin() + take);
        have += take;
    }
    if (auto* r = dynamic_cast<RemoteSession*>(remote_.get())) audited_before_ += r->positions_audited();
    remote_.reset();
    history_ = std::move(kept);
    n_past_ = keep;
    verified_floor_ = keep;
    recover(e);
    throw engine::Rewind(keep, std::string("verification: ") + e.what());
}

int ResilientSession::verified() const { return std::min(n_past_, std::max(verified_floor_, remote_ ? remote_->verified() : n_past_)); }

void ResilientSession::settle() {
    for (;;) {
        try {
            if (remote_) remote_->settle();
            return;
        } catch (const AuditMismatch& e) {
            caught_hop(e);
        } catch (const RemoteError& e) {
            if (++failovers_ > cfg_.max_failovers) throw;
            std::fprintf(stderr, "[client] %s; rerouting around %s\n", e.what(), e.hop().empty() ? "it" : e.hop().c_str());
            recover(e);
        }
    }
}

uint64_t ResilientSession::positions_audited() const {
    const auto* r = dynamic_cast<const RemoteSession*>(remote_.get());
    return audited_before_ + (r ? r->positions_audited() : 0);
}

// A replica for each hop of route_: another node (another identity; on the
// open swarm another network too) that serves at least the hop's layers,
// drawn at random, off the route where possible, among those that can run the
// hop's kernels where there are any (client/remote_audit.cpp). "" where there is none.
std::vector<std::string> ResilientSession::pick_auditors(const std::vector<Candidate>& candidates) {
    std::vector<std::string> out;
    std::map<std::string, const Candidate*> by_address;
    for (const Candidate& c : candidates) by_address[c.address] = &c;
    std::set<std::string> on_route(route_.begin(), route_.end());
    int start = cfg_.remote.local_layers;
    std::mt19937_64 rng(rng_());
    for (const std::string& hop : route_) {
        auto it = by_address.find(hop);
        const Candidate* h = it == by_address.end() ? nullptr : it->second;
        const int end = h ? h->span_end : start;
        std::vector<std::string> off, on, off_other, on_other;
        for (const Candidate& c : candidates) {
            if (!h || c.address == hop || banned_.count(c.address) || c.span_start > start || c.span_end < end) continue;
            if (c.identity != net::Key32{} && c.identity == h->identity) continue;
            const std::string net_c = network_of(c.address), net_h = network_of(hop);
            if (!cfg_.trusted_nodes && !net_c.empty() && net_c == net_h) continue;
            const bool kernels = h->isa == 0 || c.isa == h->isa || (h->isa <= 3 && (c.isa_set >> (h->isa - 1)) & 1);
            if (kernels) (on_route.count(c.address) ? on : off).push_back(c.address);
            else (on_route.count(c.address) ? on_other : off_other).push_back(c.address);
        }
        std::vector<std::string>& pool = !off.empty() ? off : !on.empty() ? on : !off_other.empty() ? off_other : on_other;
        out.push_back(pool.empty() ? "" : pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)]);
        start = end;
    }
    return out;
}

}  // namespace llmn::client
