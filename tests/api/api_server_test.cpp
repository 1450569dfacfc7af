// `llm-node api` over HTTP: completions streamed and not, the OpenAI-style
// errors (malformed JSON, unknown model, too-long prompt, oversize body, no
// route), /metrics, and a client that leaves mid-stream: its session is
// closed on every node and nothing stays allocated.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "api_fixture.h"
#include "net/probe.h"

namespace llmn::testing {
namespace {

using nlohmann::json;

const char* kChat = R"({"model":"api-model","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me a story"}],"max_tokens":24,"temperature":0%s})";

std::string chat_body(const std::string& extra = "") {
    char buf[512];
    std::snprintf(buf, sizeof buf, kChat, extra.c_str());
    return buf;
}

// The text of an SSE stream's chunks (chat deltas or completion text), and its finish_reason.
std::pair<std::string, std::string> read_stream(const std::string& body, bool chat, bool* done = nullptr) {
    std::string text, finish;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
        const size_t end = body.find("\n\n", pos);
        const std::string data = body.substr(pos + 6, end - pos - 6);
        pos = end;
        if (data == "[DONE]") {
            if (done) *done = true;
            continue;
        }
        const json j = json::parse(data);
        if (j["choices"].empty()) continue;  // the usage chunk
        const json& c = j["choices"][0];
        text += chat ? c["delta"].value("content", "") : c.value("text", "");
        if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
    return {text, finish};
}

TEST(ApiServer, StreamedAndPlainCompletionsAgreeThroughThreeNodes) {
    ApiSwarm sw(false);
    auto c = sw.client();
    auto plain = c->Post("/v1/chat/completions", chat_body(), "application/json");
    ASSERT_TRUE(plain) << httplib::to_string(plain.error());
    ASSERT_EQ(plain->status, 200) << plain->body;
    const json p = json::parse(plain->body);
    EXPECT_EQ(p["object"], "chat.completion");
    EXPECT_EQ(p["model"], "api-model");
    const std::string text = p["choices"][0]["message"]["content"];
    EXPECT_EQ(p["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(p["usage"]["completion_tokens"].get<int>() + p["usage"]["prompt_tokens"].get<int>(), p["usage"]["total_tokens"].get<int>());

    auto streamed = c->Post("/v1/chat/completions", chat_body(R"(,"stream":true,"stream_options":{"include_usage":true})"), "application/json");
    ASSERT_TRUE(streamed);
    ASSERT_EQ(streamed->status, 200);
    EXPECT_NE(streamed->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    bool done = false;
    const auto [stext, finish] = read_stream(streamed->body, true, &done);
    EXPECT_TRUE(done);
    EXPECT_EQ(stext, text);
    EXPECT_EQ(finish, p["choices"][0]["finish_reason"]);
    EXPECT_NE(streamed->body.find("\"usage\""), std::string::npos);

    // Text completions, and the same through a local server.
    const std::string cbody = R"({"model":"api-model","prompt":"Once upon a time","max_tokens":12,"temperature":0})";
    auto comp = c->Post("/v1/completions", cbody, "application/json");
    ASSERT_TRUE(comp);
    ASSERT_EQ(comp->status, 200) << comp->body;
    ApiSwarm local(true);
    auto lc = local.client()->Post("/v1/completions", cbody, "application/json");
    ASSERT_TRUE(lc);
    EXPECT_EQ(json::parse(comp->body)["choices"][0]["text"], json::parse(lc->body)["choices"][0]["text"]);
    auto models = c->Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "api-model");
}

TEST(ApiServer, BadRequestsGetOpenAiErrors) {
    ApiSwarm sw(true, {"-c", "64"});
    auto c = sw.client();
    struct Case {
        const char* path;
        std::string body;
        int status;
        const char* type;
        const char* code;  // "" for null
    };
    const std::string long_prompt(2000, 'a');
    const Case cases[] = {
        {"/v1/chat/completions", "{not json", 400, "invalid_request_error", ""},
        {"/v1/chat/completions", R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})", 404, "invalid_request_error", "model_not_found"},
        {"/v1/completions", R"({"model":"api-model","prompt":")" + long_prompt + R"(","max_tokens":4})", 400, "invalid_request_error",
         "context_length_exceeded"},
        {"/v1/completions", R"({"model":"api-model","prompt":"hi","max_tokens":100})", 400, "invalid_request_error", "context_length_exceeded"},
        {"/v1/completions", R"({"model":"api-model","prompt":"hi","n":3})", 400, "invalid_request_error", ""},
        {"/v1/nothing", "{}", 404, "invalid_request_error", ""},
        {"/v1/completions", std::string(9u << 20, ' '), 413, "invalid_request_error", ""},
    };
    for (const Case& k : cases) {
        auto r = c->Post(k.path, k.body, "application/json");
        ASSERT_TRUE(r) << k.path;
        EXPECT_EQ(r->status, k.status) << k.body.substr(0, 80) << " -> " << r->body;
        json j;
        ASSERT_NO_THROW(j = json::parse(r->body)) << r->body;
        ASSERT_TRUE(j.contains("error")) << r->body;
        EXPECT_EQ(j["error"]["type"], k.type) << r->body;
        EXPECT_TRUE(j["error"]["message"].is_string());
        if (*k.code) {
            EXPECT_EQ(j["error"]["code"], k.code) << r->body;
        }
    }
    auto ok = c->Post("/v1/completions", R"({"model":"api-model","prompt":"hi","max_tokens":4,"temperature":0})", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << "the server keeps serving after bad requests: " << ok->body;
    auto metrics = c->Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("llmnode_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("llmnode_generated_tokens_total"), std::string::npos);
    EXPECT_NE(metrics->body.find("llmnode_active_sessions 0"), std::string::npos) << metrics->body;
}

TEST(ApiServer, AClientLeavingMidStreamClosesTheSessionOnEveryNode) {
    ApiSwarm sw(false);
    std::vector<std::string> addrs;
    for (auto& n : sw.nodes) addrs.push_back(n->address());
    auto c = sw.client();
    int chunks = 0;
    const std::string body = R"({"model":"api-model","prompt":"Once","max_tokens":200,"temperature":0,"stream":true})";
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };  // leave after a few chunks
    auto r = c->send(req);
    EXPECT_FALSE(r) << "the client aborted the stream";
    EXPECT_EQ(chunks, 3);
    // Every node frees the session (CLOSE from the API server) and the server counts none.
    bool freed = false;
    std::string seen;
    for (int i = 0; i < 50 && !freed; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const auto probed = net::probe_nodes(addrs, std::chrono::milliseconds(1000));
        freed = probed.size() == addrs.size();
        seen.clear();
        for (const auto& p : probed) {
            seen += p.address + " free " + std::to_string(p.info.free_sessions) + "; ";
            freed = freed && p.info.free_sessions == 8;
        }
    }
    EXPECT_TRUE(freed) << seen;
    auto metrics = sw.client()->Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("llmnode_active_sessions 0"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("llmnode_client_disconnects_total 1"), std::string::npos) << metrics->body;
    // And the server still answers.
    auto again = sw.client()->Post("/v1/completions", R"({"model":"api-model","prompt":"Once","max_tokens":4})", "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200) << again->body;
}

TEST(ApiServer, NoReachableNodeIsA503) {
    ApiSwarm sw(true);  // only for the model file
    NodeProcess api({"api", "-m", api_test_model(), "--listen", "127.0.0.1:0", "-t", "1", "--nodes", "127.0.0.1:1"});
    httplib::Client c("http://" + api.address());
    c.set_read_timeout(30, 0);
    auto r = c.Post("/v1/completions", R"({"model":"api-model","prompt":"hi","max_tokens":2})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "server_error");
}

}  // namespace
}  // namespace llmn::testing
