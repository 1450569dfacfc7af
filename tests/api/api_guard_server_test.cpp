// Hostile requests against a real `llm-node api` (in-process layers): what a
// web page in the operator's browser can send (text/plain and form posts, a
// foreign Origin, a re-bound Host name) is refused before anything is
// generated; --api-key, --allow-origin (CORS and preflight), the warning for
// a listener beyond loopback, the concurrency slot taken before parsing, and
// chunked bodies. Traffic only ever goes to 127.0.0.1.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "../cli/run_process.h"
#include "api_fixture.h"

namespace llmn::testing {
namespace {

using nlohmann::json;

const std::string kCompletion = R"({"model":"api-model","prompt":"Once upon a time","max_tokens":4,"temperature":0})";

std::string port_of(const std::string& addr) { return addr.substr(addr.rfind(':') + 1); }

std::unique_ptr<httplib::Client> loopback_client(const std::string& addr) {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", std::stoi(port_of(addr)));
    c->set_read_timeout(60, 0);
    return c;
}

// The error code of an OpenAI-style error body ("" when there is none).
std::string code_of(const httplib::Result& r) {
    if (!r) return "no response: " + httplib::to_string(r.error());
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("error") || !j["error"]["code"].is_string()) return "";
    return j["error"]["code"];
}

// True when the server counts no evaluated prompt tokens: nothing was generated.
bool generated_nothing(httplib::Client& c, const httplib::Headers& auth = {}) {
    auto m = c.Get("/metrics", auth);
    return m && m->body.find("llmnode_prompt_tokens_total{model=\"api-model\"} 0\n") != std::string::npos;
}

// The log of `p` once it holds `text`, or after 3 s.
std::string log_with(const NodeProcess& p, const std::string& text) {
    std::string log;
    for (int i = 0; i < 60 && (log = p.log()).find(text) == std::string::npos; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return log;
}

TEST(ApiGuardServer, TextPlainAndFormPostsAre415AndGenerateNothing) {
    ApiSwarm sw(true);
    auto c = sw.client();
    // What an HTML form or a no-preflight fetch() can send: the body is the JSON, or a form field holding it.
    const std::string form = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n" + kCompletion + "\r\n--b--\r\n";
    const std::pair<const char*, std::string> posts[] = {{"text/plain", kCompletion},
                                                         {"text/plain;charset=UTF-8", kCompletion},
                                                         {"application/x-www-form-urlencoded", kCompletion},
                                                         {"multipart/form-data; boundary=b", form}};
    for (const auto& [type, body] : posts) {
        auto r = c->Post("/v1/completions", body, type);
        ASSERT_TRUE(r) << type;
        EXPECT_EQ(r->status, 415) << type << " -> " << r->body;
        EXPECT_EQ(code_of(r), "unsupported_media_type") << r->body;
        EXPECT_EQ(json::parse(r->body)["error"]["type"], "invalid_request_error");
    }
    auto chat = c->Post("/v1/chat/completions", R"({"model":"api-model","messages":[{"role":"user","content":"hi"}],"max_tokens":2})",
                        "text/plain");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->status, 415) << chat->body;
    auto broken = c->Post("/v1/completions", kCompletion, "multipart/form-data; boundary=x");  // httplib refuses it unparsed
    ASSERT_TRUE(broken);
    EXPECT_EQ(broken->status, 400) << broken->body;
    EXPECT_TRUE(generated_nothing(*c));
    auto ok = c->Post("/v1/completions", kCompletion, "application/json; charset=utf-8");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    EXPECT_FALSE(generated_nothing(*c));
}

TEST(ApiGuardServer, AForeignOriginIs403AndGetsNoCorsHeaders) {
    ApiSwarm sw(true);
    auto c = sw.client();
    for (const char* origin : {"https://evil.example", "null", "http://127.0.0.1:1"}) {
        auto r = c->Post("/v1/completions", {{"Origin", origin}}, kCompletion, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 403) << origin << " -> " << r->body;
        EXPECT_EQ(code_of(r), "origin_not_allowed");
        EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
        auto g = c->Get("/v1/models", {{"Origin", origin}});
        ASSERT_TRUE(g);
        EXPECT_EQ(g->status, 403) << origin;
        auto pre = c->Options("/v1/completions", {{"Origin", origin}, {"Access-Control-Request-Method", "POST"},
                                                  {"Access-Control-Request-Headers", "content-type"}});
        ASSERT_TRUE(pre);
        EXPECT_EQ(pre->status, 403) << origin;
        EXPECT_FALSE(pre->has_header("Access-Control-Allow-Origin"));
        EXPECT_FALSE(pre->has_header("Access-Control-Allow-Methods"));
    }
    EXPECT_TRUE(generated_nothing(*c));
    // The status page's own origin (a same-origin POST carries it) and the loopback names pass.
    for (const std::string& origin : {"http://" + sw.api->address(), "http://localhost:" + port_of(sw.api->address())}) {
        auto r = c->Post("/v1/completions", {{"Origin", origin}}, kCompletion, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << origin << " -> " << r->body;
        EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), origin);
        EXPECT_EQ(r->get_header_value("Vary"), "Origin");
    }
    auto page = c->Get("/");  // the status page and its fetch (a same-origin GET: no Origin)
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    auto swarm = c->Get("/v1/swarm");
    ASSERT_TRUE(swarm);
    EXPECT_EQ(swarm->status, 200) << swarm->body;
}

TEST(ApiGuardServer, ARebindingHostIsRefused) {
    ApiSwarm sw(true);
    auto c = sw.client();
    const std::string port = port_of(sw.api->address());
    const std::string evil = "evil.example:" + port;
    auto r = c->Post("/v1/completions", {{"Host", evil}, {"Origin", "http://" + evil}}, kCompletion, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << r->body;
    EXPECT_EQ(code_of(r), "host_not_allowed");
    EXPECT_NE(r->body.find(evil), std::string::npos) << "the error names the Host: " << r->body;
    for (const std::string path : {"/", "/v1/swarm", "/v1/models", "/metrics", "/health"}) {
        auto g = c->Get(path, {{"Host", evil}});
        ASSERT_TRUE(g);
        EXPECT_EQ(g->status, 403) << path;
    }
    auto other_port = c->Get("/v1/models", {{"Host", "127.0.0.1:1"}});
    ASSERT_TRUE(other_port);
    EXPECT_EQ(other_port->status, 403);
    EXPECT_TRUE(generated_nothing(*c));
    for (const std::string& host : {"localhost:" + port, "[::1]:" + port, "127.0.0.1:" + port}) {
        auto ok = c->Get("/v1/models", {{"Host", host}});
        ASSERT_TRUE(ok);
        EXPECT_EQ(ok->status, 200) << host;
    }
}

TEST(ApiGuardServer, AnApiKeyIsRequiredAndComparedExactly) {
    ApiSwarm sw(true, {"--api-key", "sk-test-123", "--allow-origin", "https://app.example.com"});
    auto c = sw.client();
    for (const char* auth : {"", "Bearer sk-test-12", "Bearer sk-test-1234", "Bearer sk-test-124", "sk-test-123"}) {
        httplib::Headers h;
        if (*auth) h.emplace("Authorization", auth);
        auto r = c->Post("/v1/completions", h, kCompletion, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 401) << "'" << auth << "' -> " << r->body;
        EXPECT_EQ(code_of(r), "invalid_api_key");
        EXPECT_EQ(r->body.find("sk-test"), std::string::npos) << "the error never echoes a key";
        auto m = c->Get("/v1/models", h);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->status, 401);
    }
    const httplib::Headers key = {{"Authorization", "Bearer sk-test-123"}};
    EXPECT_TRUE(generated_nothing(*c, key));
    auto ok = c->Post("/v1/completions", key, kCompletion, "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    EXPECT_EQ(json::parse(ok->body)["object"], "text_completion");
    // The status page: the browser's own prompt (Basic, any user, the key as password).
    auto page = c->Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 401);
    EXPECT_EQ(page->get_header_value("WWW-Authenticate").rfind("Basic", 0), 0u);
    auto shown = c->Get("/", {{"Authorization", "Basic b3BlcmF0b3I6c2stdGVzdC0xMjM="}});  // operator:sk-test-123
    ASSERT_TRUE(shown);
    EXPECT_EQ(shown->status, 200);
    // A browser's preflight carries no key; an allowed origin passes it, then sends the key.
    auto pre = c->Options("/v1/completions", {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "POST"},
                                              {"Access-Control-Request-Headers", "authorization, content-type"}});
    ASSERT_TRUE(pre);
    EXPECT_EQ(pre->status, 204);
    EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "https://app.example.com");
    auto denied = c->Post("/v1/completions", {{"Origin", "https://app.example.com"}}, kCompletion, "application/json");
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401);
    EXPECT_EQ(denied->get_header_value("Access-Control-Allow-Origin"), "https://app.example.com") << "the page may read why";
}

TEST(ApiGuardServer, TheKeyCanComeFromTheEnvironment) {
    ::setenv("LLM_NODE_API_KEY", "sk-from-env", 1);
    std::unique_ptr<ApiSwarm> sw;
    try {
        sw = std::make_unique<ApiSwarm>(true);
    } catch (...) {
        ::unsetenv("LLM_NODE_API_KEY");
        throw;
    }
    ::unsetenv("LLM_NODE_API_KEY");
    auto c = sw->client();
    auto none = c->Get("/v1/models");
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401);
    auto ok = c->Get("/v1/models", {{"Authorization", "Bearer sk-from-env"}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST(ApiGuardServer, AllowOriginAnswersCorsAndPreflight) {
    ApiSwarm sw(true, {"--allow-origin", "https://app.example.com,http://tool.test:3000", "--allow-origin=http://third.test"});
    auto c = sw.client();
    for (const char* origin : {"https://app.example.com", "http://tool.test:3000", "http://third.test"}) {
        auto pre = c->Options("/v1/chat/completions", {{"Origin", origin}, {"Access-Control-Request-Method", "POST"},
                                                       {"Access-Control-Request-Headers", "content-type,x-stainless-os"}});
        ASSERT_TRUE(pre);
        EXPECT_EQ(pre->status, 204) << origin;
        EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), origin);
        EXPECT_NE(pre->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
        EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Headers"), "content-type,x-stainless-os");
        EXPECT_EQ(pre->get_header_value("Vary"), "Origin");
        auto r = c->Post("/v1/completions", {{"Origin", origin}}, kCompletion, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << origin << " -> " << r->body;
        EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), origin);
        EXPECT_EQ(r->get_header_value("Vary"), "Origin");
    }
    auto evil = c->Post("/v1/completions", {{"Origin", "https://evil.example"}}, kCompletion, "application/json");
    ASSERT_TRUE(evil);
    EXPECT_EQ(evil->status, 403);
    // A page at an allowed origin may proxy to the API under its own name.
    auto proxied = c->Get("/v1/models", {{"Host", "app.example.com"}});
    ASSERT_TRUE(proxied);
    EXPECT_EQ(proxied->status, 200);

    ApiSwarm any(true, {"--allow-origin", "*"});
    auto a = any.client()->Post("/v1/completions", {{"Origin", "https://anyone.example"}}, kCompletion, "application/json");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200) << a->body;
    EXPECT_EQ(a->get_header_value("Access-Control-Allow-Origin"), "https://anyone.example");
}

TEST(ApiGuardServer, WarnsWhenListeningBeyondLoopbackWithoutAKey) {
    const std::vector<std::string> base = {"api", "-m", api_test_model(), "-t", "1", "--local", "--listen"};
    NodeProcess open(NodeProcess::with(base, {"0.0.0.0:0"}));
    const std::string log = log_with(open, "set --api-key");
    EXPECT_NE(log.find("WARNING"), std::string::npos) << log;
    EXPECT_NE(log.find("anyone who can reach"), std::string::npos) << log;
    auto c = loopback_client(open.address());
    const std::string port = port_of(open.address());
    auto local = c->Get("/health");  // Host: 127.0.0.1:PORT
    ASSERT_TRUE(local);
    EXPECT_EQ(local->status, 200);
    auto lan = c->Get("/health", {{"Host", "192.0.2.1:" + port}});  // no key: only the loopback names
    ASSERT_TRUE(lan);
    EXPECT_EQ(lan->status, 403);

    NodeProcess keyed(NodeProcess::with(base, {"0.0.0.0:0", "--api-key", "k1"}));
    auto k = loopback_client(keyed.address());
    auto any_host = k->Get("/health", {{"Host", "192.0.2.1:" + port_of(keyed.address())}, {"Authorization", "Bearer k1"}});
    ASSERT_TRUE(any_host);
    EXPECT_EQ(any_host->status, 200) << "with a key, any Host";
    ApiSwarm loop(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(keyed.log().find("WARNING"), std::string::npos) << keyed.log();
    EXPECT_EQ(loop.api->log().find("WARNING"), std::string::npos) << loop.api->log();
}

TEST(ApiGuardServer, ABusyServerRefusesBeforeParsing) {
    // A node that accepts the connection and never answers holds the only slot for a while.
    const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(silent, 16), 0);
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string node = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    NodeProcess api({"api", "-m", api_test_model(), "--listen", "127.0.0.1:0", "-t", "1", "--nodes", node, "--max-concurrent", "1"});
    // The held request must get the slot first (a malformed one holds it for a moment too): try a few times.
    int status = 0, held_status = 0;
    for (int attempt = 0; attempt < 3 && (status != 429 || held_status == 429); ++attempt) {
        auto held = std::async(std::launch::async, [&] { return loopback_client(api.address())->Post("/v1/completions", kCompletion, "application/json"); });
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        auto c = loopback_client(api.address());
        status = 0;
        for (int i = 0; i < 20 && status != 429; ++i) {
            auto r = c->Post("/v1/completions", "{not json", "application/json");
            ASSERT_TRUE(r);
            status = r->status;
            if (status != 429) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        auto h = held.get();
        held_status = h ? h->status : -1;
    }
    EXPECT_EQ(status, 429) << "a malformed body waits for a slot like any other, before it is parsed";
    EXPECT_EQ(held_status, 503) << "the held request found no node";
    ::close(silent);
}

TEST(ApiGuardServer, UnboundedBodiesAreRefusedAndBadFlagsAreUsageErrors) {
    ApiSwarm sw(true);
    auto c = sw.client();
    // Refused before the body is read, and the connection closes: the answer may be lost to a reset.
    auto r = c->Post(
        "/v1/completions",
        [](size_t, httplib::DataSink& sink) {
            sink.write(kCompletion.data(), kCompletion.size());
            sink.done();
            return true;
        },
        "application/json");
    if (r) {
        EXPECT_EQ(r->status, 411) << r->body;
    }
    auto gz = c->Post("/v1/completions", {{"Content-Encoding", "gzip"}}, std::string(64, 'x'), "application/json");
    if (gz) {
        EXPECT_EQ(gz->status, 415) << gz->body;
    }
    EXPECT_TRUE(generated_nothing(*c));
    const auto bad = run_process({llm_node_binary(), "api", "-m", api_test_model(), "--allow-origin", "evil.example"}, 60);
    EXPECT_EQ(bad.exit_code, 2) << bad.describe();
    EXPECT_NE(bad.err.find("--allow-origin"), std::string::npos) << bad.err;
    const auto help = run_process({llm_node_binary(), "api", "--help"}, 60);
    for (const char* flag : {"--api-key", "--allow-origin", "--allow-host", "LLM_NODE_API_KEY"})
        EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace llmn::testing
