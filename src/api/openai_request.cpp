#include "api/openai_request.h"

#include <nlohmann/json.hpp>

namespace llmn::api {

using nlohmann::json;

std::string ApiError::json() const {
    nlohmann::json e = {{"message", what()}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
    if (!param.empty()) e["param"] = param;
    if (!code.empty()) e["code"] = code;
    return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

ApiError bad(const std::string& param, const std::string& message) { return ApiError(400, message, "invalid_request_error", param); }

double number(const json& j, const char* key, double def, double lo, double hi) {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_number()) throw bad(key, std::string("'") + key + "' must be a number");
    const double v = j[key].get<double>();
    if (!(v >= lo && v <= hi))
        throw bad(key, std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
    return v;
}

// Message content: a string, or an array of {"type":"text","text":...} parts.
std::string content_text(const json& c, size_t i) {
    const std::string param = "messages[" + std::to_string(i) + "].content";
    if (c.is_null()) return {};
    if (c.is_string()) return c.get<std::string>();
    if (!c.is_array()) throw bad(param, "'" + param + "' must be a string or an array of text parts");
    std::string out;
    for (const json& part : c) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string())
            throw bad(param, "only text content parts are supported in '" + param + "'");
        out += part["text"].get<std::string>();
    }
    return out;
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
        throw ApiError(400, std::string("We could not parse the JSON body of your request: ") + e.what());
    }
    if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
    CompletionRequest r;
    r.chat = chat;
    if (!j.contains("model") || !j["model"].is_string()) throw bad("model", "you must provide a model parameter");
    r.model = j["model"].get<std::string>();
    if (chat) {
        if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
            throw bad("messages", "'messages' must be a non-empty array");
        for (size_t i = 0; i < j["messages"].size(); ++i) {
            const json& m = j["messages"][i];
            if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
                throw bad("messages[" + std::to_string(i) + "].role", "every message needs a string 'role'");
            std::string role = m["role"].get<std::string>();
            if (role == "developer") role = "system";
            if (role != "system" && role != "user" && role != "assistant")
                throw bad("messages[" + std::to_string(i) + "].role", "unsupported role '" + role + "' (system, developer, user, assistant)");
            r.messages.push_back({role, content_text(m.value("content", json()), i)});
        }
    } else {
        if (!j.contains("prompt")) throw bad("prompt", "you must provide a prompt");
        const json& p = j["prompt"];
        if (p.is_string()) r.prompt = p.get<std::string>();
        else if (p.is_array() && p.size() == 1 && p[0].is_string()) r.prompt = p[0].get<std::string>();
        else throw bad("prompt", "'prompt' must be a string (token arrays and batches are not supported)");
        if (j.contains("echo") && j["echo"] != false && !j["echo"].is_null()) throw bad("echo", "'echo' is not supported");
        if (j.contains("suffix") && !j["suffix"].is_null()) throw bad("suffix", "'suffix' is not supported");
    }
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        if (!j.contains(key) || j[key].is_null()) continue;
        if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1 || j[key].get<int64_t>() > (1 << 24))
            throw bad(key, std::string("'") + key + "' must be a positive integer");
        r.max_tokens = int(j[key].get<int64_t>());
    }
    if (!chat && r.max_tokens < 0) r.max_tokens = 16;  // OpenAI's default for completions
    r.sampling.temp = float(number(j, "temperature", 1.0, 0.0, 2.0));
    r.sampling.top_p = float(number(j, "top_p", 1.0, 0.0, 1.0));
    r.sampling.top_k = int(number(j, "top_k", 0, 0, 1e6));
    r.sampling.min_p = float(number(j, "min_p", 0.0, 0.0, 1.0));
    r.sampling.repeat_penalty = float(number(j, "repeat_penalty", 1.0, 0.01, 10.0));
    number(j, "presence_penalty", 0, -2, 2);  // accepted; not applied
    number(j, "frequency_penalty", 0, -2, 2);
    if (j.contains("seed") && !j["seed"].is_null()) {
        if (!j["seed"].is_number_integer()) throw bad("seed", "'seed' must be an integer");
        r.sampling.seed = uint64_t(j["seed"].get<int64_t>());
    }
    if (j.contains("n") && !j["n"].is_null() && !(j["n"].is_number_integer() && j["n"].get<int64_t>() == 1))
        throw bad("n", "only n = 1 is supported");
    if (j.contains("logprobs") && !j["logprobs"].is_null() && !(j["logprobs"].is_boolean() && !j["logprobs"].get<bool>()))
        throw bad("logprobs", "'logprobs' is not supported");
    if (j.contains("tools") && !j["tools"].is_null() && !(j["tools"].is_array() && j["tools"].empty()))
        throw bad("tools", "tools are not supported");
    if (j.contains("stop") && !j["stop"].is_null()) {
        const json& s = j["stop"];
        if (s.is_string()) r.stop.push_back(s.get<std::string>());
        else if (s.is_array() && s.size() <= 4) {
            for (const json& x : s) {
                if (!x.is_string()) throw bad("stop", "'stop' must be a string or an array of up to 4 strings");
                r.stop.push_back(x.get<std::string>());
            }
        } else throw bad("stop", "'stop' must be a string or an array of up to 4 strings");
    }
    if (j.contains("stream") && !j["stream"].is_null()) {
        if (!j["stream"].is_boolean()) throw bad("stream", "'stream' must be a boolean");
        r.stream = j["stream"].get<bool>();
    }
    if (j.contains("stream_options") && j["stream_options"].is_object() && j["stream_options"].contains("include_usage")) {
        const json& u = j["stream_options"]["include_usage"];
        if (!u.is_boolean() && !u.is_null())
            throw bad("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
        r.include_usage = u.is_boolean() && u.get<bool>();
    }
    return r;
}

}  // namespace llmn::api
