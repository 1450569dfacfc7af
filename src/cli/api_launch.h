// Shared by `api` and `demo`: list the nodes serving a model (for the status
// page) and run the API server until a signal stops it.
#pragma once
#include <functional>
#include <vector>

#include "api/server.h"
#include "engine/model.h"

namespace llmn::cli {

std::function<std::vector<api::NodeView>()> node_lister(const client::SessionSource& src, const engine::Model& model);
// Prints {"listening":"host:port"} on stdout once bound, then serves.
int run_api_server(api::ApiConfig cfg);

}  // namespace llmn::cli
