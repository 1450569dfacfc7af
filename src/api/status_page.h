// The swarm status page at / and its data at /v1/swarm: the model, which
// node covers which layers (a bar per node and a coverage row), throughput,
// round trip and free slots. The page is rendered on the server (readable
// without JavaScript) and refreshes itself from /v1/swarm every 2 s.
#pragma once
#include <string>
#include <vector>

#include "api/server.h"

namespace llmn::api {

std::string swarm_json(const std::string& model, int n_layer, const std::string& source, const std::vector<NodeView>& nodes,
                       int active_sessions);
std::string status_page_html(const std::string& model, int n_layer, const std::string& source, const std::vector<NodeView>& nodes);

}  // namespace llmn::api
