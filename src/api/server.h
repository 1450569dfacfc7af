// `llm-node api`: an OpenAI-compatible HTTP server (chat and text completions,
// streamed over SSE or not, /v1/models), Prometheus /metrics, and the swarm
// status page at /. Every request gets its own session (its own KV caches on
// the nodes), closed when the request ends or the client goes away.
// Every request first passes the HttpGuard (api/http_guard.h): its Host and
// Origin, the API key when one is set, and a JSON Content-Type on POST.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/session_source.h"

namespace llmn::api {

// One node as the status page shows it.
struct NodeView {
    std::string address, node_id;
    int span_start = 0, span_end = 0;
    double tokens_per_s = 0, rtt_ms = 0;
    int free_sessions = 0;
    std::string health = "ok";  // "ok", or "unreachable: why" (known address, no answer to the probe)
    std::string reach;          // how it is reached: "direct", "mapped" (UPnP), "relayed", "unknown"
};

struct ApiConfig {
    std::string listen = "127.0.0.1:8080";
    std::string model_path;
    std::string model_name;  // the id clients use; default: the file's stem
    client::SessionSource source;
    int threads = 0;         // client-side compute threads (0: every core)
    int n_ctx = 0;           // per request; 0: min(4096, trained context)
    int max_concurrent = 16; // generations at once; more get HTTP 429
    size_t max_body_bytes = 8u << 20;  // larger bodies get 413; chunked bodies (unbounded in httplib) get 411
    // Who may call (api/http_guard.h): browser origins beyond the defaults ("*": any),
    // extra names the server answers to (DNS rebinding guard), and the key
    // every request must carry as "Authorization: Bearer KEY" (empty: none).
    std::vector<std::string> allow_origins, allow_hosts;
    std::string api_key;
    // The nodes serving the model, for the status page (may be empty: local).
    std::function<std::vector<NodeView>()> nodes;
};

class ApiServer {
public:
    explicit ApiServer(ApiConfig cfg);
    ~ApiServer();
    // Binds the listening socket; returns "host:port" (port 0 picks one).
    // Throws std::invalid_argument for a malformed allow_origins / allow_hosts entry or key.
    std::string bind();
    // After bind(): the stderr warning for a listener beyond loopback without a key, or "".
    std::string exposure_warning() const;
    // Serves until stop(); bind() first.
    void run();
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace llmn::api
