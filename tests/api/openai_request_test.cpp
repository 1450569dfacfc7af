// The OpenAI request parser: defaults, every field it reads, and the errors
// a client sees for bad bodies (status, type, param, code).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/openai_request.h"

namespace llmn::api {
namespace {

ApiError error_of(const std::string& body, bool chat) {
    try {
        parse_completion_request(body, chat);
    } catch (const ApiError& e) {
        return e;
    }
    ADD_FAILURE() << "no error for " << body;
    return ApiError(0, "");
}

TEST(OpenAiRequest, ChatRequestWithEveryFieldParses) {
    const auto r = parse_completion_request(R"({"model":"m","messages":[{"role":"developer","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"hel"},{"type":"text","text":"lo"}]},{"role":"assistant","content":null}],
        "max_tokens":7,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,"seed":42,"stop":["\n","END"],"stream":true,
        "stream_options":{"include_usage":true},"n":1,"presence_penalty":0.5})", true);
    EXPECT_TRUE(r.chat);
    EXPECT_EQ(r.model, "m");
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[0].role, "system");
    EXPECT_EQ(r.messages[1].content, "hello");
    EXPECT_EQ(r.messages[2].content, "");
    EXPECT_EQ(r.max_tokens, 7);
    EXPECT_EQ(r.sampling.temp, 0.0f);
    EXPECT_EQ(r.sampling.top_p, 0.5f);
    EXPECT_EQ(r.sampling.top_k, 3);
    EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
    EXPECT_EQ(r.sampling.seed, 42u);
    EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "END"}));
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiRequest, DefaultsFollowOpenAi) {
    const auto chat = parse_completion_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", true);
    EXPECT_EQ(chat.max_tokens, -1);  // until the context is full
    EXPECT_EQ(chat.sampling.temp, 1.0f);
    EXPECT_EQ(chat.sampling.top_p, 1.0f);
    EXPECT_EQ(chat.sampling.top_k, 0);
    EXPECT_EQ(chat.sampling.min_p, 0.0f);
    EXPECT_FALSE(chat.stream);
    const auto text = parse_completion_request(R"({"model":"m","prompt":"Once","stop":"x"})", false);
    EXPECT_EQ(text.max_tokens, 16);
    EXPECT_EQ(text.prompt, "Once");
    EXPECT_EQ(text.stop, std::vector<std::string>{"x"});
    EXPECT_EQ(parse_completion_request(R"({"model":"m","prompt":["one"]})", false).prompt, "one");
}

TEST(OpenAiRequest, BadBodiesNameTheField) {
    struct Case {
        const char* body;
        bool chat;
        const char* param;
    };
    const Case cases[] = {
        {R"({"model":"m"})", true, "messages"},
        {R"({"model":"m","messages":[]})", true, "messages"},
        {R"({"model":"m","messages":[{"content":"x"}]})", true, "messages[0].role"},
        {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})", true, "messages[0].role"},
        {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})", true, "messages[0].content"},
        {R"({"messages":[{"role":"user","content":"x"}]})", true, "model"},
        {R"({"model":"m","prompt":"x","max_tokens":0})", false, "max_tokens"},
        {R"({"model":"m","prompt":"x","max_tokens":1.5})", false, "max_tokens"},
        {R"({"model":"m","prompt":"x","temperature":3})", false, "temperature"},
        {R"({"model":"m","prompt":"x","temperature":"hot"})", false, "temperature"},
        {R"({"model":"m","prompt":"x","top_p":-0.1})", false, "top_p"},
        {R"({"model":"m","prompt":"x","n":2})", false, "n"},
        {R"({"model":"m","prompt":"x","logprobs":true})", false, "logprobs"},
        {R"({"model":"m","prompt":"x","stop":["a","b","c","d","e"]})", false, "stop"},
        {R"({"model":"m","prompt":"x","stop":[1]})", false, "stop"},
        {R"({"model":"m","prompt":"x","stream":"yes"})", false, "stream"},
        {R"({"model":"m","prompt":[1,2,3]})", false, "prompt"},
        {R"({"model":"m"})", false, "prompt"},
    };
    for (const Case& c : cases) {
        const ApiError e = error_of(c.body, c.chat);
        EXPECT_EQ(e.status, 400) << c.body;
        EXPECT_EQ(e.type, "invalid_request_error") << c.body;
        EXPECT_EQ(e.param, c.param) << c.body;
    }
}

TEST(OpenAiRequest, MalformedJsonIsA400WithOpenAiShape) {
    for (const char* body : {"", "{", "{bad", "[1,2]", "null", "\"text\"", "{\"model\":\"m\",}"}) {
        const ApiError e = error_of(body, true);
        EXPECT_EQ(e.status, 400) << body;
        const auto j = nlohmann::json::parse(e.json());
        ASSERT_TRUE(j.contains("error")) << body;
        EXPECT_TRUE(j["error"]["message"].is_string());
        EXPECT_EQ(j["error"]["type"], "invalid_request_error");
        EXPECT_TRUE(j["error"].contains("param"));
        EXPECT_TRUE(j["error"].contains("code"));
    }
}

TEST(OpenAiRequest, ErrorJsonSurvivesInvalidUtf8InTheMessage) {
    const ApiError e(400, std::string("bad \xff\xfe bytes"), "invalid_request_error", "prompt", "x");
    const auto j = nlohmann::json::parse(e.json());
    EXPECT_EQ(j["error"]["param"], "prompt");
    EXPECT_EQ(j["error"]["code"], "x");
}

}  // namespace
}  // namespace llmn::api
