// A session that survives nodes dying: it plans a route from the nodes it can
// find, and when a hop fails or stalls it bans that hop, plans a new route and
// rebuilds the KV caches on the new hops by replaying every token so far. The
// caller sees the same logits, only later.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "client/remote_session.h"
#include "client/route_planner.h"

namespace llmn::client {

struct ResilientConfig {
    RemoteConfig remote;
    int max_failovers = 8;
    // Onion circuits: relays before the first span and after the last (0 or 1
    // each). Relays are nodes off the route; a failover builds a new circuit.
    int entry_relays = 0, exit_relays = 0;
    std::chrono::milliseconds probe_timeout{2000};
    // The nodes are the operator's own (--nodes, a private swarm): plan on their
    // claims, fastest route first, no network diversity rule (route_planner.h).
    bool trusted_nodes = false;
    // The first route to use (when every hop of it is found); later routes are planned.
    std::vector<std::string> initial_route;
};

// Connects to each address, reads what it serves and measures the round trip;
// unreachable nodes, nodes of another model and (with `swarm_key`) nodes
// outside the private swarm are left out.
// `why`, when given, receives what was found and why nodes were left out
// ("3 nodes found, none reachable: A timed out, ...").
std::vector<Candidate> probe_nodes(const std::vector<std::string>& addresses, const engine::Model& model,
                                   std::chrono::milliseconds timeout, std::optional<net::SwarmKey> swarm_key = std::nullopt,
                                   std::string* why = nullptr);

class ResilientSession : public engine::Session {
public:
    // `discover` lists candidate node addresses; it is asked again after every failure.
    ResilientSession(std::shared_ptr<const engine::Model> model, std::function<std::vector<std::string>()> discover,
                     ResilientConfig cfg, tensor::ThreadPool& pool);

    void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions = false) override;
    int n_past() const override { return n_past_; }
    int n_ctx() const override { return cfg_.remote.n_ctx; }
    int n_vocab() const override;

    int verified() const override;
    void settle() override;

    int failovers() const { return failovers_; }
    // Hops caught by audits (client/audit.h) and positions the replicas confirmed.
    int caught() const { return caught_; }
    uint64_t positions_audited() const;
    // Seconds from the last failure being noticed to the replayed session being ready.
    double last_recovery_seconds() const { return last_recovery_s_; }
    const std::vector<std::string>& route() const { return route_; }

private:
    void rebuild();
    // Bans e.hop(), plans a route around it, and rebuilds it (retrying as a failure mid-step does).
    void recover(const RemoteError& e);
    [[noreturn]] void caught_hop(const AuditMismatch& e);
    std::vector<std::string> pick_auditors(const std::vector<Candidate>& candidates);

    std::shared_ptr<const engine::Model> model_;
    std::function<std::vector<std::string>()> discover_;
    ResilientConfig cfg_;
    tensor::ThreadPool& pool_;
    std::unique_ptr<engine::Session> remote_;  // a RemoteSession, or a CircuitSession with relays
    // Every eval so far, as it was batched: the replay repeats the same batches so
    // the rebuilt KV caches hold exactly the values the lost ones held.
    std::vector<std::vector<int32_t>> history_;
    int n_past_ = 0;
    void note_speed(int n_tokens, double seconds);
    std::set<std::string> banned_;
    std::set<std::string> contacted_;  // nodes this session contacted directly (circuits: never a span)
    std::map<std::string, double> measured_;  // seconds per token per layer this client saw, by address
    std::mt19937_64 rng_{std::random_device{}()};
    std::vector<std::string> route_;
    int failovers_ = 0;
    int caught_ = 0;
    int verified_floor_ = 0;  // positions verified on earlier routes (a replay does not undo that)
    uint64_t audited_before_ = 0;  // positions_audited of earlier routes
    double last_recovery_s_ = 0;
};

}  // namespace llmn::client
