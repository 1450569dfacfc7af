// OpenAI request bodies: parse arbitrary bytes as /v1/chat/completions and as
// /v1/completions. The only error allowed out is ApiError (a 400 to the client).
#include "api/openai_request.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        try {
            (void)api::parse_completion_request(body, chat);
        } catch (const api::ApiError& e) {
            if (e.status != 400) __builtin_trap();
            (void)e.json();
        }
    }
    return 0;
}
