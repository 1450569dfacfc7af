// Where a session's layers run, as the user chose it: in this process, along an
// explicit route, over a list of candidate nodes, or over whatever nodes a
// discovery function (the DHT) finds. One place builds the session for
// `generate`, `chat` and the API server.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/remote_session.h"
#include "engine/session.h"

namespace llmn::client {

struct SessionSource {
    enum class Kind { local, route, nodes, discover } kind = Kind::local;
    std::vector<std::string> addresses;                     // route (in layer order) or candidate nodes
    std::function<std::vector<std::string>()> discover;     // Kind::discover: asked again after failures
    RemoteConfig remote;                                    // n_ctx is overridden per session
    // Onion circuits: with a route, the relays are named; with nodes or the
    // swarm, this many relays (0 or 1) are picked on each side.
    std::string entry_relay, exit_relay;
    int entry_relays = 0, exit_relays = 0;
    std::string describe() const;                           // "local", "route a,b,c", "swarm"...
};

// A new session with its own KV caches (remote hops open theirs now and close
// them when the session is destroyed).
std::unique_ptr<engine::Session> open_session(const SessionSource& src, std::shared_ptr<const engine::Model> model, int n_ctx,
                                              tensor::ThreadPool& pool);

}  // namespace llmn::client
