// The official `openai` npm client (installed by scripts/setup.sh into
// tests/api/js/node_modules from the npm registry) against a real
// `llm-node api` over a 3-node swarm: a plain and a streamed chat completion
// at temperature 0 give the same text, and an unknown model is a 404.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "../cli/run_process.h"
#include "api_fixture.h"

namespace llmn::testing {
namespace {

TEST(OpenAiNpmClient, StreamedChatEqualsPlainChatAtTemperatureZero) {
    const std::string js = std::string(LLM_NODE_SOURCE_DIR) + "/tests/api/js";
    if (!std::filesystem::exists(js + "/node_modules/openai/package.json"))
        GTEST_SKIP() << "the openai npm client is not installed (scripts/setup.sh runs npm ci in tests/api/js)";
    if (!std::filesystem::exists("/usr/bin/node")) GTEST_SKIP() << "node (Debian's nodejs) is not installed";
    ApiSwarm sw(false);
    const auto r = run_process({"/usr/bin/node", js + "/chat_test.mjs", "http://" + sw.api->address() + "/v1", sw.model_id}, 120);
    ASSERT_EQ(r.exit_code, 0) << r.describe(2000);
    const auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
    std::printf("openai npm client: plain %s | streamed in %d chunks %s\n", j["plain"].dump().c_str(), j["chunks"].get<int>(),
                j["streamed"].dump().c_str());
    EXPECT_TRUE(j["equal"].get<bool>());
    EXPECT_GT(j["chunks"].get<int>(), 2);
    EXPECT_EQ(j["finish"], j["plain_finish"]);
    EXPECT_EQ(j["usage"], j["stream_usage"]);
    EXPECT_EQ(j["unknownModel"]["status"], 404);
    EXPECT_EQ(j["unknownModel"]["code"], "model_not_found");
}

}  // namespace
}  // namespace llmn::testing
