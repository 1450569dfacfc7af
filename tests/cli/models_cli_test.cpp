// `llm-node models` and name resolution in the real binary, over the fake
// machine of tests/support/fake_model_store.h (HOME and LLM_NODE_MODELS point
// into it). ./models and /usr/share/ollama of the real machine may add models,
// so the checks look models up by name instead of counting them.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/cli_fixture.h"
#include "support/fake_model_store.h"

namespace llmn::testing {
namespace {

class ModelsCliTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { store_ = new FakeModelStore(make_fake_model_store(temp_path("cli-model-store"))); }
    static void TearDownTestSuite() {
        std::filesystem::remove_all(store_->base);
        delete store_;
        store_ = nullptr;
    }
    void SetUp() override { store_->apply(env_); }

    static FakeModelStore* store_;
    ScopedEnv env_;
};
FakeModelStore* ModelsCliTest::store_ = nullptr;

nlohmann::json find_named(const std::vector<nlohmann::json>& lines, const std::string& name) {
    for (const auto& o : lines)
        if (o.is_object() && o.value("name", "") == name) return o;
    return nullptr;
}

TEST_F(ModelsCliTest, JsonListsEveryLayoutWithItsFields) {
    const ProcessResult p = llm_node({"models", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const std::vector<nlohmann::json> lines = json_lines(p);

    const nlohmann::json llama = find_named(lines, "llama3.2:1b");
    ASSERT_TRUE(llama.is_object()) << p.out;
    EXPECT_EQ(llama["family"], "Llama");
    EXPECT_EQ(llama["architecture"], "llama");
    EXPECT_EQ(llama["supported"], true);
    EXPECT_EQ(llama["source"], "ollama");
    EXPECT_EQ(llama["quantization"], "F32");
    EXPECT_EQ(llama["context_length"], 512);
    EXPECT_EQ(llama["file"], store_->ollama + "/blobs/sha256-" + std::string(64, '1'));
    EXPECT_GT(llama["n_params"].get<uint64_t>(), 0u);
    EXPECT_GT(llama["size_bytes"].get<uint64_t>(), llama["n_params"].get<uint64_t>());
    EXPECT_TRUE(llama["aliases"].is_array());

    const nlohmann::json qwen = find_named(lines, "qwen2.5:latest");
    ASSERT_TRUE(qwen.is_object()) << p.out;
    EXPECT_EQ(qwen["family"], "Qwen2");
    EXPECT_NE(std::find(qwen["aliases"].begin(), qwen["aliases"].end(), "qwen2.5"), qwen["aliases"].end());

    const nlohmann::json hf = find_named(lines, "TheOrg/Tiny-GGUF");
    ASSERT_TRUE(hf.is_object()) << p.out;
    EXPECT_EQ(hf["source"], "huggingface");
    const nlohmann::json deep = find_named(lines, "deep");
    ASSERT_TRUE(deep.is_object()) << p.out;
    EXPECT_EQ(deep["family"], "Qwen3");
    EXPECT_EQ(deep["source"], "env");
    const nlohmann::json phi = find_named(lines, "linked");
    ASSERT_TRUE(phi.is_object()) << p.out;
    EXPECT_EQ(phi["family"], "Phi-3");

    // Debris is left out of stdout, and is only reported with -v.
    for (const auto& o : lines) EXPECT_EQ(o["file"].get<std::string>().find("garbage"), std::string::npos);
    EXPECT_EQ(p.err.find("garbage.gguf"), std::string::npos) << p.err;
    const ProcessResult v = llm_node({"models", "--json", "-v"});
    ASSERT_EQ(v.exit_code, 0) << v.describe();
    EXPECT_NE(v.err.find("garbage.gguf"), std::string::npos) << v.err;
    EXPECT_NE(v.err.find("library/broken/latest"), std::string::npos) << v.err;
}

TEST_F(ModelsCliTest, TableHasAHeaderAndOneRowPerModel) {
    const ProcessResult p = llm_node({"models"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const std::vector<std::string> lines = split_lines(p.out);
    ASSERT_GE(lines.size(), 9u) << p.out;  // header + the 8 fake models
    EXPECT_EQ(lines[0].rfind("NAME", 0), 0u) << lines[0];
    for (const char* col : {"FAMILY", "PARAMS", "QUANT", "CONTEXT", "SOURCE", "FILE"})
        EXPECT_NE(lines[0].find(col), std::string::npos) << col;
    bool saw_llama = false;
    for (const std::string& l : lines)
        if (l.rfind("llama3.2:1b ", 0) == 0) {
            saw_llama = true;
            EXPECT_NE(l.find("Llama"), std::string::npos) << l;
            EXPECT_NE(l.find("ollama"), std::string::npos) << l;
            EXPECT_NE(l.find("K "), std::string::npos) << l;  // params of a tiny model, as "NNNK"
        }
    EXPECT_TRUE(saw_llama) << p.out;
}

TEST_F(ModelsCliTest, InfoResolvesOllamaTagsAndNames) {
    const std::string blob1 = store_->ollama + "/blobs/sha256-" + std::string(64, '1');
    ProcessResult p = llm_node({"info", "-m", "llama3.2:1b", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    std::vector<nlohmann::json> lines = json_lines(p);
    ASSERT_EQ(lines.size(), 1u) << p.out;
    EXPECT_EQ(lines[0]["file"], blob1);
    EXPECT_EQ(lines[0]["family"], "Llama");

    p = llm_node({"info", "qwen2.5", "--json"});  // implicit :latest
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    lines = json_lines(p);
    ASSERT_EQ(lines.size(), 1u) << p.out;
    EXPECT_EQ(lines[0]["family"], "Qwen2");

    // A Hugging Face name with its quantization, through another command that loads the model.
    p = llm_node({"logits", "-m", "TheOrg/Tiny-GGUF:Q8_0", "--ids", "1,2", "--top", "3"});
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(json_lines(p).size(), 1u) << p.out;
}

TEST_F(ModelsCliTest, UnknownAndAmbiguousNamesAreRuntimeErrors) {
    ProcessResult p = llm_node({"info", "-m", "no-such-model:7b"});
    EXPECT_EQ(p.exit_code, 1) << p.describe();
    EXPECT_NE(p.err.find("no model named 'no-such-model:7b' found"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find(store_->plain), std::string::npos) << p.err;
    EXPECT_EQ(p.out, "");

    p = llm_node({"info", "-m", "TheOrg/Tiny-GGUF"});
    EXPECT_EQ(p.exit_code, 1) << p.describe();
    EXPECT_NE(p.err.find("ambiguous"), std::string::npos) << p.err;
}

TEST_F(ModelsCliTest, NothingFoundIsNotAnError) {
    const std::string empty = temp_path("cli-empty-home");
    std::filesystem::create_directories(empty);
    env_.set("HOME", empty);
    env_.set("LLM_NODE_MODELS", empty);
    const ProcessResult p = llm_node({"models"});
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    if (!p.out.empty()) GTEST_SKIP() << "this machine has models in ./models or /usr/share/ollama";
    EXPECT_NE(p.err.find("no GGUF models found"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find(empty), std::string::npos) << p.err;
}

TEST_F(ModelsCliTest, HelpAndBadUsage) {
    ProcessResult p = llm_node({"models", "--help"});
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_NE(p.out.find("usage: llm-node models"), std::string::npos) << p.out;
    p = llm_node({"models", "--frobnicate"});
    EXPECT_EQ(p.exit_code, 2) << p.describe();
    p = llm_node({"models", "extra"});
    EXPECT_EQ(p.exit_code, 2) << p.describe();
}

}  // namespace
}  // namespace llmn::testing
