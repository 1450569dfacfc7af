// OpenAI request bodies (/v1/chat/completions, /v1/completions) parsed and
// validated into one shape, and OpenAI-style errors. Pure: no I/O, so the
// parser can be unit-tested and fuzzed.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "model/chat_template.h"

namespace llmn::api {

// An error the client sees as {"error":{"message","type","param","code"}}.
struct ApiError : std::runtime_error {
    int status;
    std::string type, param, code;
    ApiError(int status_, std::string message, std::string type_ = "invalid_request_error", std::string param_ = "",
             std::string code_ = "")
        : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
          code(std::move(code_)) {}
    std::string json() const;
};

struct CompletionRequest {
    bool chat = false;
    std::string model;
    std::vector<model::ChatMessage> messages;  // chat
    std::string prompt;                        // completions
    int max_tokens = -1;                       // -1: until the context is full
    engine::SamplerConfig sampling;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;                // stream_options.include_usage
};

// Throws ApiError (400) naming the field that is wrong. OpenAI's defaults:
// temperature 1, top_p 1; top_k / min_p / repeat_penalty (llama.cpp server
// extensions) default off. n > 1, logprobs and tools are refused.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

}  // namespace llmn::api
