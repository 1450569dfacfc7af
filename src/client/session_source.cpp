#include "client/session_source.h"

#include "client/circuit_session.h"
#include "client/resilient_session.h"
#include "engine/local_session.h"

namespace llmn::client {

std::string SessionSource::describe() const {
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& a : v) s += (s.empty() ? "" : ",") + a;
        return s;
    };
    switch (kind) {
        case Kind::local: return "this process";
        case Kind::route: return "route " + join(addresses);
        case Kind::nodes: return "nodes " + join(addresses);
        case Kind::discover: return "the swarm";
    }
    return "?";
}

std::unique_ptr<engine::Session> open_session(const SessionSource& src, std::shared_ptr<const engine::Model> model, int n_ctx,
                                              tensor::ThreadPool& pool) {
    RemoteConfig rc = src.remote;
    rc.n_ctx = n_ctx;
    switch (src.kind) {
        case SessionSource::Kind::local: {
            engine::SessionConfig sc;
            sc.n_ctx = n_ctx;
            return std::make_unique<engine::LocalSession>(std::move(model), sc, pool);
        }
        case SessionSource::Kind::route:
            if (!src.entry_relay.empty() || !src.exit_relay.empty())
                return std::make_unique<CircuitSession>(std::move(model), CircuitPlan{src.addresses, src.entry_relay, src.exit_relay}, rc, pool);
            return std::make_unique<RemoteSession>(std::move(model), src.addresses, rc, pool);
        case SessionSource::Kind::nodes:
        case SessionSource::Kind::discover: {
            ResilientConfig fc;
            fc.remote = rc;
            fc.entry_relays = src.entry_relays;
            fc.exit_relays = src.exit_relays;
            // --nodes names the operator's own machines, a private swarm's members are known parties:
            // plan on their claims. The public swarm's strangers get the Sybil-resistant planner.
            fc.trusted_nodes = src.kind == SessionSource::Kind::nodes || src.remote.swarm_key.has_value();
            auto discover = src.kind == SessionSource::Kind::nodes
                                ? std::function<std::vector<std::string>()>([a = src.addresses] { return a; })
                                : src.discover;
            return std::make_unique<ResilientSession>(std::move(model), std::move(discover), fc, pool);
        }
    }
    throw std::logic_error("unknown session source");
}

}  // namespace llmn::client
