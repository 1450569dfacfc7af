#include "api/server.h"

#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api/http_guard.h"
#include "api/metrics.h"
#include "api/openai_request.h"
#include "api/status_page.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "tensor/thread_pool.h"

namespace llmn::api {

using nlohmann::json;

namespace {

std::string random_id(const char* prefix) {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> lock(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s%016llx", prefix, (unsigned long long)rng());
    return buf;
}

// Model text may hold invalid UTF-8 (a byte token cut short): replace, never throw.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t unix_now() { return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(); }

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(e.json(), "application/json");
}

// Holds one of max_concurrent generation slots for the life of a request.
class Slot {
public:
    Slot(std::atomic<int>& used, int max) : used_(used) {
        if (used_.fetch_add(1) >= max) {
            used_.fetch_sub(1);
            throw ApiError(429, "too many generations at once (" + std::to_string(max) + "); retry shortly", "rate_limit_error", "",
                           "rate_limit_exceeded");
        }
    }
    ~Slot() { used_.fetch_sub(1); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

private:
    std::atomic<int>& used_;
};

}  // namespace

struct ApiServer::Impl {
    ApiConfig cfg;
    std::shared_ptr<const engine::Model> model;
    std::unique_ptr<model::Tokenizer> tok;
    model::ChatTemplate tmpl;
    std::string name;
    std::vector<std::string> aliases;
    int n_ctx = 0;
    int64_t created = unix_now();
    tensor::ThreadPool pool;
    httplib::Server svr;
    Metrics metrics;
    std::atomic<int> running{0};
    std::mutex nodes_mu;
    std::vector<NodeView> nodes_cache;
    std::chrono::steady_clock::time_point nodes_at{};
    std::unique_ptr<HttpGuard> guard;  // built by bind(), once the port is known
    std::string addr;                  // "host:port", once bound

    explicit Impl(ApiConfig c) : cfg(std::move(c)), pool(cfg.threads) {
        model = engine::Model::load(cfg.model_path);
        tok = model::Tokenizer::create(model::Vocab::from_gguf(model->file()));
        const auto& mc = model->config();
        tmpl = model::ChatTemplate::detect(model->file().get_string("tokenizer.chat_template", ""), mc.spec.arch, tok->vocab().tokens);
        const std::string stem = std::filesystem::path(cfg.model_path).stem().string();
        name = cfg.model_name.empty() ? stem : cfg.model_name;
        aliases = {name, stem, std::filesystem::path(cfg.model_path).filename().string(), cfg.model_path,
                   model->file().get_string("general.name", "")};
        n_ctx = cfg.n_ctx > 0 ? cfg.n_ctx : int(std::min<int64_t>(4096, std::max<int64_t>(mc.n_ctx_train, 256)));
        routes();
    }

    bool known_model(const std::string& m) const {
        for (const auto& a : aliases)
            if (!a.empty() && a == m) return true;
        return false;
    }

    std::vector<NodeView> nodes() {
        std::lock_guard<std::mutex> lock(nodes_mu);
        const auto now = std::chrono::steady_clock::now();
        if (cfg.nodes && now - nodes_at > std::chrono::seconds(2)) {
            nodes_cache = cfg.nodes();
            nodes_at = now;
        }
        return nodes_cache;
    }

    json model_json() const {
        return {{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "llm-node"}};
    }

    void routes();
    bool admit(const std::string& endpoint, const httplib::Request& req, httplib::Response& res);
    // `handler` behind the guard; `endpoint` is the metrics label of refusals.
    httplib::Server::Handler guarded(std::string endpoint, httplib::Server::Handler handler) {
        return [this, endpoint = std::move(endpoint), handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
            if (admit(endpoint, req, res)) handler(req, res);
        };
    }
    void preflight(const httplib::Request& req, httplib::Response& res);
    void completion(const httplib::Request& req, httplib::Response& res, bool chat);
};

// Refusals happen in the handlers, after httplib has read the body (at most
// max_body_bytes), so the client gets its answer on a clean connection.
bool ApiServer::Impl::admit(const std::string& endpoint, const httplib::Request& req, httplib::Response& res) {
    const GuardRequest g{req.method, req.path, req.get_header_value("Host"), req.get_header_value("Origin"),
                         req.get_header_value("Authorization"), req.get_header_value("Content-Type")};
    res.set_header("Vary", "Origin");
    // An allowed page may read every answer, errors (a wrong key) included.
    if (!g.origin.empty() && guard->host_allowed(g.host) && guard->origin_allowed(g.origin, g.host))
        res.set_header("Access-Control-Allow-Origin", g.origin);
    try {
        guard->check(g);
    } catch (const ApiError& e) {
        send_error(res, e);
        // On the status page a browser asks for the key itself (any user name, the key as password).
        if (e.status == 401) res.set_header("WWW-Authenticate", req.path == "/" ? "Basic realm=\"llm-node\"" : "Bearer realm=\"llm-node\"");
        metrics.request(endpoint, e.status);
        return false;
    }
    return true;
}

// A CORS preflight from an origin admit() allowed (browsers send no key on it).
void ApiServer::Impl::preflight(const httplib::Request& req, httplib::Response& res) {
    res.status = 204;
    res.set_header("Allow", "GET, HEAD, POST, OPTIONS");
    if (!req.has_header("Origin")) return;
    const std::string want = req.get_header_value("Access-Control-Request-Headers");
    res.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", want.empty() ? "Authorization, Content-Type" : want);
    res.set_header("Access-Control-Max-Age", "600");
}

void ApiServer::Impl::routes() {
    svr.set_payload_max_length(cfg.max_body_bytes);
    svr.new_task_queue = [] { return new httplib::ThreadPool(64); };  // a thread per open stream
    // One request per connection: bytes a request leaves unread (a refused
    // body, a multipart form httplib stopped parsing) are never read as a
    // second request, which a web page could have written.
    svr.set_keep_alive_max_count(1);
    // httplib 0.11 reads a chunked body, one without Content-Length, or a
    // compressed one, with no size limit: refuse those unread (no HTTP client
    // needs them, and browsers cannot send them).
    svr.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
        const bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE";
        const std::string encoding = req.get_header_value("Content-Encoding");
        if (has_body && (!req.has_header("Content-Length") || req.has_header("Transfer-Encoding")))
            send_error(res, ApiError(411, "send the request body with a Content-Length (chunked bodies are not accepted)"));
        else if (!encoding.empty() && encoding != "identity")
            send_error(res, ApiError(415, "compressed request bodies (Content-Encoding: " + encoding.substr(0, 40) + ") are not accepted",
                                     "invalid_request_error", "", "unsupported_media_type"));
        else
            return httplib::Server::HandlerResponse::Unhandled;
        return httplib::Server::HandlerResponse::Handled;
    });
    svr.Options(R"(/.*)", guarded("preflight", [this](const httplib::Request& req, httplib::Response& res) { preflight(req, res); }));
    svr.Get("/v1/models", guarded("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(dump(json{{"object", "list"}, {"data", json::array({model_json()})}}), "application/json");
        metrics.request("/v1/models", 200);
    }));
    svr.Get(R"(/v1/models/(.+))", guarded("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
        if (!known_model(req.matches[1])) {
            send_error(res, ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist", "invalid_request_error",
                                     "model", "model_not_found"));
        } else {
            res.set_content(dump(model_json()), "application/json");
        }
        metrics.request("/v1/models", res.status);
    }));
    svr.Post("/v1/chat/completions", guarded("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
        completion(req, res, true);
    }));
    svr.Post("/v1/completions", guarded("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
        completion(req, res, false);
    }));
    svr.Get("/metrics", guarded("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics.render(name), "text/plain; version=0.0.4");
    }));
    svr.Get("/health", guarded("/health", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"status\":\"ok\"}", "application/json");
    }));
    svr.Get("/v1/swarm", guarded("/v1/swarm", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(swarm_json(name, model->config().n_layer, cfg.source.describe(), nodes(), metrics.active()), "application/json");
    }));
    svr.Get("/", guarded("/", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(status_page_html(name, model->config().n_layer, cfg.source.describe(), nodes()), "text/html; charset=utf-8");
    }));
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        const int status = res.status;
        ApiError e(status, status == 413   ? "the request body is too large"
                           : status == 404 ? "no route " + req.method + " " + req.path
                                           : "the request could not be read (" + std::to_string(status) + ")");
        res.set_content(e.json(), "application/json");
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, what, "server_error"));
    });
}

void ApiServer::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat) {
    const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
    try {
        // The slot first: parsing and tokenizing a large body is work a flood could multiply.
        auto slot = std::make_shared<Slot>(running, cfg.max_concurrent);
        const CompletionRequest r = parse_completion_request(req.body, chat);
        if (!known_model(r.model))
            throw ApiError(404, "The model '" + r.model + "' does not exist", "invalid_request_error", "model", "model_not_found");
        const std::string text = chat ? tmpl.render(r.messages, true) : r.prompt;
        const std::vector<int32_t> ids = tok->encode(text, true, true);
        if (ids.empty()) throw ApiError(400, "the prompt is empty", "invalid_request_error", chat ? "messages" : "prompt");
        const int want = r.max_tokens < 0 ? 1 : r.max_tokens;
        if (int64_t(ids.size()) + want > n_ctx)
            throw ApiError(400,
                           "This model's maximum context length is " + std::to_string(n_ctx) + " tokens. However, you requested " +
                               std::to_string(ids.size() + size_t(want)) + " tokens (" + std::to_string(ids.size()) + " in the " +
                               (chat ? "messages" : "prompt") + ", " + std::to_string(want) + " for the completion).",
                           "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded");
        std::shared_ptr<engine::Session> session;
        try {
            session = client::open_session(cfg.source, model, n_ctx, pool);
        } catch (const std::exception& e) {
            throw ApiError(503, std::string("no route through the swarm: ") + e.what(), "server_error", "", "service_unavailable");
        }
        metrics.session_opened();
        auto sampler = std::make_shared<engine::Sampler>(r.sampling);
        engine::GenerateOptions go;
        go.max_tokens = r.max_tokens < 0 ? n_ctx - int(ids.size()) : r.max_tokens;
        go.stop = r.stop;
        if (chat) {  // end the turn where the template would, also when the model spells it out
            const auto ends = tmpl.turn_stops();
            go.stop.insert(go.stop.end(), ends.begin(), ends.end());
        }
        const std::string id = random_id(chat ? "chatcmpl-" : "cmpl-");
        const int64_t created_at = unix_now();
        const char* object = chat ? "chat.completion" : "text_completion";
        auto usage = [](const engine::GenerateResult& g) {
            return json{{"prompt_tokens", g.n_prompt}, {"completion_tokens", g.n_gen}, {"total_tokens", g.n_prompt + g.n_gen}};
        };
        if (!r.stream) {
            engine::GenerateResult g;
            try {
                g = engine::generate(*session, *tok, *sampler, ids, go, [](const std::string&) { return true; });
            } catch (const std::exception& e) {
                metrics.session_closed();
                throw ApiError(502, std::string("generation failed: ") + e.what(), "server_error");
            }
            session.reset();  // closes the session on every node
            metrics.session_closed();
            metrics.generated(uint64_t(g.n_prompt), uint64_t(g.n_gen), g.gen_seconds);
            json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", g.finish_reason}};
            if (chat) choice["message"] = {{"role", "assistant"}, {"content", g.text}};
            else choice["text"] = g.text;
            json out = {{"id", id}, {"object", object}, {"created", created_at}, {"model", r.model},
                        {"system_fingerprint", nullptr}, {"choices", json::array({choice})}, {"usage", usage(g)}};
            res.set_content(dump(out), "application/json");
            metrics.request(endpoint, 200);
            return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, session, sampler, slot, ids, go, id, created_at, chunk_object, chat, r, usage](size_t, httplib::DataSink& sink) mutable {
                auto chunk = [&](json choice_delta, const json& finish) {
                    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
                    if (chat) choice["delta"] = std::move(choice_delta);
                    else choice["text"] = choice_delta.value("content", "");
                    return json{{"id", id}, {"object", chunk_object}, {"created", created_at}, {"model", r.model},
                                {"system_fingerprint", nullptr}, {"choices", json::array({choice})}};
                };
                auto send = [&](const json& j) {
                    const std::string ev = "data: " + dump(j) + "\n\n";
                    return sink.write(ev.data(), ev.size());
                };
                bool alive = !chat || send(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
                engine::GenerateResult g;
                try {
                    if (alive)
                        g = engine::generate(*session, *tok, *sampler, ids, go,
                                             [&](const std::string& t) { return alive = send(chunk({{"content", t}}, nullptr)); });
                } catch (const std::exception& e) {
                    if (alive) send(json{{"error", {{"message", std::string("generation failed: ") + e.what()}, {"type", "server_error"},
                                                    {"param", nullptr}, {"code", nullptr}}}});
                    alive = false;
                    metrics.request("/v1/stream-errors", 502);
                }
                session.reset();  // closes the session on every node, also when the client left
                metrics.session_closed();
                metrics.generated(uint64_t(g.n_prompt), uint64_t(g.n_gen), g.gen_seconds);
                if (g.finish_reason == "cancelled") metrics.client_gone();
                if (alive) {
                    alive = send(chunk(json::object(), g.finish_reason));
                    if (alive && r.include_usage) {
                        json u = {{"id", id}, {"object", chunk_object}, {"created", created_at}, {"model", r.model},
                                  {"choices", json::array()}, {"usage", usage(g)}};
                        alive = send(u);
                    }
                    if (alive) sink.write("data: [DONE]\n\n", 14);
                }
                sink.done();
                return alive;
            });
        metrics.request(endpoint, 200);
    } catch (const ApiError& e) {
        send_error(res, e);
        metrics.request(endpoint, e.status);
    }
}

ApiServer::ApiServer(ApiConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
ApiServer::~ApiServer() { stop(); }

std::string ApiServer::bind() {
    const std::string& l = impl_->cfg.listen;
    const auto colon = l.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("--listen wants host:port, got '" + l + "'");
    const std::string host = l.substr(0, colon);
    const int port = std::atoi(l.c_str() + colon + 1);
    // The packaged library listens with a backlog of 5; re-listen with a larger one.
    int fd = -1;
    impl_->svr.set_socket_options([&fd](int s) {
        int yes = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        fd = s;
    });
    int bound = port;
    if (port == 0) bound = impl_->svr.bind_to_any_port(host);
    else if (!impl_->svr.bind_to_port(host, port)) bound = -1;
    if (bound <= 0) throw std::runtime_error("cannot listen on " + l);
    if (fd >= 0) ::listen(fd, 1024);
    impl_->guard = std::make_unique<HttpGuard>(GuardConfig{host, bound, impl_->cfg.allow_origins, impl_->cfg.allow_hosts, impl_->cfg.api_key});
    impl_->addr = host + ":" + std::to_string(bound);
    return impl_->addr;
}

std::string ApiServer::exposure_warning() const { return impl_->guard ? impl_->guard->exposure_warning(impl_->addr) : ""; }

void ApiServer::run() { impl_->svr.listen_after_bind(); }
void ApiServer::stop() {
    if (impl_) impl_->svr.stop();
}

}  // namespace llmn::api
