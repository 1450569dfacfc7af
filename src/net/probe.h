// Asks nodes what they serve: a secure link to each (all at once), its
// NODE_INFO, and the round trip. Nodes behind NAT that a relay lists in its
// NODE_INFO are probed through it too ("id@relay" addresses, net/relay.h).
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/messages.h"

namespace llmn::net {

struct ProbedNode {
    std::string address;
    Key32 identity{};
    NodeInfo info;
    double rtt_seconds = 0;
};

struct ProbeFailure {
    std::string address;
    std::string reason;  // short: "timed out", "refused", or the error
};

struct ProbeReport {
    std::vector<ProbedNode> nodes;
    std::vector<ProbeFailure> failed;
    // "2 nodes on the DHT, none reachable: A timed out, B refused" and the like.
    std::string summary(size_t addresses_given) const;
};

// NODE_INFO is signed by the node (domain "llm-node/v1 node info", every
// field but the signature), so a node that probes for a client (PROBE_REQUEST)
// can leave nodes out but cannot change what they said.
void sign_node_info(NodeInfo& info, const Identity& id);
bool node_info_signed_by(const NodeInfo& info, const Key32& id);

// With `swarm_key`, the links prove it (net/swarm_key.h): nodes of another
// swarm, or of none, fail the handshake and are reported like unreachable ones.
ProbeReport probe_swarm(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                        std::optional<Key32> swarm_key = std::nullopt);
// The nodes that answered, without the failures.
std::vector<ProbedNode> probe_nodes(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                                    std::optional<Key32> swarm_key = std::nullopt);

// Probes `directory` directly and asks it (PROBE_REQUEST) to probe `addresses`
// for us, so this process contacts no other node. The directory comes first in
// `nodes` when it answered; answers whose NODE_INFO signature fails are
// reported as failures. rtt_seconds of the others is the directory's figure.
ProbeReport probe_through(const std::string& directory, const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                          std::optional<Key32> swarm_key = std::nullopt);

}  // namespace llmn::net
