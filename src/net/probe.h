// Asks nodes what they serve: a secure link to each (all at once), its
// NODE_INFO, and the round trip; unreachable nodes are left out.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "net/messages.h"

namespace llmn::net {

struct ProbedNode {
    std::string address;
    Key32 identity{};
    NodeInfo info;
    double rtt_seconds = 0;
};

// With `swarm_key`, the links prove it (net/swarm_key.h): nodes of another
// swarm, or of none, fail the handshake and are left out like unreachable ones.
std::vector<ProbedNode> probe_nodes(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                                    std::optional<Key32> swarm_key = std::nullopt);

}  // namespace llmn::net
