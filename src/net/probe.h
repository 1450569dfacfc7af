// Asks nodes what they serve: a secure link to each (all at once), its
// NODE_INFO, and the round trip; unreachable nodes are left out.
#pragma once
#include <chrono>
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

std::vector<ProbedNode> probe_nodes(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout);

}  // namespace llmn::net
