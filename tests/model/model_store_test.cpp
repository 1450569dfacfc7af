// Model discovery over a fake machine (tests/support/fake_model_store.h): the
// folders searched, the names and aliases of each layout, what is left out, and
// how a name resolves to a file.
#include "model/model_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "support/fake_model_store.h"
#include "support/test_support.h"

namespace llmn::model {
namespace {

namespace fs = std::filesystem;

class ModelStoreTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        store_ = new testing::FakeModelStore(testing::make_fake_model_store(testing::temp_path("model-store")));
    }
    static void TearDownTestSuite() {
        fs::remove_all(store_->base);
        delete store_;
        store_ = nullptr;
    }
    void SetUp() override { store_->apply(env_); }

    // The search roots that lie inside the fake store: ./models and
    // /usr/share/ollama belong to the real machine and are left out.
    static std::vector<SearchDir> fake_roots() {
        std::vector<SearchDir> out;
        for (const SearchDir& d : model_search_roots())
            if (d.path.rfind(store_->base, 0) == 0) out.push_back(d);
        return out;
    }
    static const FoundModel* by_name(const std::vector<FoundModel>& v, const std::string& name) {
        for (const FoundModel& m : v)
            if (m.name == name) return &m;
        return nullptr;
    }
    static bool has_alias(const FoundModel& m, const std::string& a) {
        return std::find(m.aliases.begin(), m.aliases.end(), a) != m.aliases.end();
    }
    static std::string blob(char c) { return store_->ollama + "/blobs/sha256-" + std::string(64, c); }

    static testing::FakeModelStore* store_;
    testing::ScopedEnv env_;
};
testing::FakeModelStore* ModelStoreTest::store_ = nullptr;

TEST_F(ModelStoreTest, SearchRootsFollowTheEnvironmentInOrder) {
    const std::string& home = store_->home;
    env_.set("LLM_NODE_MODELS", "/a/one:/a/two::/a/one");
    std::vector<std::pair<std::string, std::string>> got;
    for (const SearchDir& d : model_search_roots()) got.emplace_back(d.path, d.source);
    const std::vector<std::pair<std::string, std::string>> want = {
        {"/a/one", "env"},
        {"/a/two", "env"},
        {"./models", "local"},
        {home + "/.cache/llm-node/models", "cache"},
        {home + "/.cache/huggingface/hub", "huggingface"},
        {home + "/.lmstudio/models", "lmstudio"},
        {home + "/.cache/lm-studio/models", "lmstudio"},
        {home + "/.ollama/models", "ollama"},
        {"/usr/share/ollama/.ollama/models", "ollama"}};
    EXPECT_EQ(got, want);
    EXPECT_EQ(model_search_dirs().front(), "/a/one");

    // The variables that move the Hugging Face and Ollama folders.
    env_.set("HF_HOME", "/hf-home");
    env_.set("OLLAMA_MODELS", "/ollama-here");
    std::vector<std::string> dirs = model_search_dirs();
    EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/hf-home/hub"), dirs.end());
    EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/ollama-here"), dirs.end());
    EXPECT_EQ(std::find(dirs.begin(), dirs.end(), home + "/.ollama/models"), dirs.end());
    env_.set("HF_HUB_CACHE", "/hub-cache");
    dirs = model_search_dirs();
    EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/hub-cache"), dirs.end());
    EXPECT_EQ(std::find(dirs.begin(), dirs.end(), "/hf-home/hub"), dirs.end());
}

TEST_F(ModelStoreTest, FindsTheModelsOfEveryLayout) {
    const std::vector<FoundModel> found = find_models(fake_roots());
    std::vector<std::string> names;
    for (const FoundModel& m : found) names.push_back(m.name + " " + m.source);
    // Sorted by root (env, huggingface, lmstudio, ollama), then name, then file.
    const std::vector<std::string> want = {"deep env",
                                           "linked env",
                                           "mini env",
                                           "TheOrg/Tiny-GGUF huggingface",
                                           "TheOrg/Tiny-GGUF huggingface",
                                           "jdoe/tiny:q8 ollama",
                                           "llama3.2:1b ollama",
                                           "qwen2.5:latest ollama"};
    EXPECT_EQ(names, want);

    const FoundModel* llama = by_name(found, "llama3.2:1b");
    ASSERT_NE(llama, nullptr);
    EXPECT_EQ(llama->family, "Llama");
    EXPECT_EQ(llama->architecture, "llama");
    EXPECT_TRUE(llama->supported);
    EXPECT_EQ(llama->file, blob('1'));
    EXPECT_EQ(llama->quantization, "F32");
    EXPECT_EQ(llama->context_length, 512);
    EXPECT_GT(llama->n_params, 100000u);
    EXPECT_EQ(llama->size_bytes, fs::file_size(blob('1')));
    EXPECT_TRUE(has_alias(*llama, "registry.ollama.ai/library/llama3.2:1b"));
    EXPECT_FALSE(has_alias(*llama, "llama3.2"));  // only the tag "latest" drops its tag

    const FoundModel* qwen = by_name(found, "qwen2.5:latest");
    ASSERT_NE(qwen, nullptr);
    EXPECT_EQ(qwen->family, "Qwen2");
    EXPECT_TRUE(has_alias(*qwen, "qwen2.5"));

    const FoundModel* jdoe = by_name(found, "jdoe/tiny:q8");
    ASSERT_NE(jdoe, nullptr);
    EXPECT_EQ(jdoe->quantization, "Q8_0");
    EXPECT_TRUE(has_alias(*jdoe, "registry.ollama.ai/jdoe/tiny:q8"));

    // Hugging Face: two files of one repo; the Q8_0 one is in two revisions but listed once.
    std::vector<const FoundModel*> hf;
    for (const FoundModel& m : found)
        if (m.source == "huggingface") hf.push_back(&m);
    ASSERT_EQ(hf.size(), 2u);
    EXPECT_EQ(hf[0]->file, store_->hf + "/models--TheOrg--Tiny-GGUF/snapshots/rev1/tiny.F32.gguf");
    EXPECT_TRUE(has_alias(*hf[0], "tiny.F32"));
    EXPECT_TRUE(has_alias(*hf[0], "TheOrg/Tiny-GGUF:F32"));
    // The Q8_0 file is in rev0 and rev1; refs/main names rev1.
    EXPECT_EQ(hf[1]->file, store_->hf + "/models--TheOrg--Tiny-GGUF/snapshots/rev1/tiny.Q8_0.gguf");
    EXPECT_EQ(hf[1]->quantization, "Q8_0");
    EXPECT_EQ(hf[1]->family, "Qwen2");
    EXPECT_TRUE(has_alias(*hf[1], "tiny.Q8_0"));
    EXPECT_TRUE(has_alias(*hf[1], "TheOrg/Tiny-GGUF:Q8_0"));

    const FoundModel* deep = by_name(found, "deep");
    ASSERT_NE(deep, nullptr);
    EXPECT_EQ(deep->family, "Qwen3");
    EXPECT_TRUE(has_alias(*deep, "sub/deep"));

    // The LM Studio file is also reached through plain/linked.gguf: listed once,
    // under the first root, with the LM Studio names as aliases.
    const FoundModel* phi = by_name(found, "linked");
    ASSERT_NE(phi, nullptr);
    EXPECT_EQ(phi->family, "Phi-3");
    EXPECT_EQ(phi->source, "env");
    EXPECT_TRUE(has_alias(*phi, "pub/Phi-GGUF"));
    EXPECT_TRUE(has_alias(*phi, "phi-mini"));
    EXPECT_TRUE(has_alias(*phi, "pub/Phi-GGUF:F32"));
}

TEST_F(ModelStoreTest, LeavesOutWhatIsNotAModelAndSaysWhy) {
    std::vector<std::string> skipped;
    (void)find_models(fake_roots(), &skipped);
    auto noted = [&](const std::string& path_part, const std::string& why_part) {
        return std::any_of(skipped.begin(), skipped.end(), [&](const std::string& s) {
            return s.find(path_part) != std::string::npos && s.find(why_part) != std::string::npos;
        });
    };
    EXPECT_TRUE(noted("library/broken/latest", "not a JSON object"));
    EXPECT_TRUE(noted("library/gone/latest", "is missing"));
    EXPECT_TRUE(noted("library/nolayer/latest", "no model layer"));
    EXPECT_TRUE(noted("garbage.gguf", "not a usable GGUF"));
    EXPECT_TRUE(noted("vocab.gguf", "vocab-only"));
    EXPECT_TRUE(noted("big-00001-of-00002.gguf", "split"));
    EXPECT_EQ(skipped.size(), 6u) << ::testing::PrintToString(skipped);
}

TEST_F(ModelStoreTest, HandlesOddManifestsWithoutThrowing) {
    const std::string root = store_->base + "/odd-ollama";
    const fs::path lib = fs::path(root) / "manifests/registry.ollama.ai/library";
    fs::create_directories(fs::path(root) / "blobs");
    const std::vector<std::string> bodies = {
        "", "null", "[]", "{\"layers\":7}", "{\"layers\":[1,null,{}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:../../x\"}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":42}]}",
        std::string(5000, '[')};
    for (size_t i = 0; i < bodies.size(); ++i) testing::fake_store_detail::write_text(lib / ("m" + std::to_string(i)) / "latest", bodies[i]);
    std::vector<std::string> skipped;
    std::vector<FoundModel> found;
    EXPECT_NO_THROW(found = find_models({{root, "ollama"}}, &skipped));
    EXPECT_TRUE(found.empty());
    EXPECT_EQ(skipped.size(), bodies.size());
    fs::remove_all(root);
}

TEST_F(ModelStoreTest, ResolvesAFileANameAnAliasOrATag) {
    const std::vector<SearchDir> roots = fake_roots();
    const std::string mini = store_->plain + "/mini.gguf";
    EXPECT_EQ(resolve_model(mini, roots), mini);  // an existing file, as it is
    EXPECT_EQ(resolve_model("llama3.2:1b", roots), blob('1'));
    EXPECT_EQ(resolve_model("LLaMA3.2:1B", roots), blob('1'));  // case does not matter
    EXPECT_EQ(resolve_model("registry.ollama.ai/library/llama3.2:1b", roots), blob('1'));
    EXPECT_EQ(resolve_model("qwen2.5", roots), blob('2'));  // the tag "latest" is implied
    EXPECT_EQ(resolve_model("Qwen2.5", roots), blob('2'));
    EXPECT_EQ(resolve_model("jdoe/tiny:q8", roots), blob('3'));
    EXPECT_EQ(resolve_model("mini", roots), fs::path(mini).lexically_normal().string());
    EXPECT_EQ(resolve_model("sub/deep", roots), store_->plain + "/sub/deep.gguf");
    EXPECT_EQ(resolve_model("pub/Phi-GGUF", roots), store_->plain + "/linked.gguf");
    const std::string snap = store_->hf + "/models--TheOrg--Tiny-GGUF/snapshots/";
    EXPECT_EQ(resolve_model("TheOrg/Tiny-GGUF:Q8_0", roots).rfind(snap, 0), 0u);
    EXPECT_EQ(resolve_model("tiny.F32", roots), snap + "rev1/tiny.F32.gguf");
    // Through the environment, as the CLI does it.
    EXPECT_EQ(resolve_model("llama3.2:1b"), blob('1'));
}

TEST_F(ModelStoreTest, ReportsAmbiguousAndUnknownNames) {
    const std::vector<SearchDir> roots = fake_roots();
    try {
        resolve_model("TheOrg/Tiny-GGUF", roots);
        FAIL() << "an ambiguous name resolved";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("ambiguous"), std::string::npos) << msg;
        EXPECT_NE(msg.find("tiny.F32.gguf"), std::string::npos) << msg;
        EXPECT_NE(msg.find("tiny.Q8_0.gguf"), std::string::npos) << msg;
    }
    try {
        resolve_model("llama9:70b", roots);
        FAIL() << "an unknown name resolved";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("no model named 'llama9:70b' found"), std::string::npos) << msg;
        EXPECT_NE(msg.find(store_->ollama), std::string::npos) << msg;
        EXPECT_NE(msg.find("llm-node models"), std::string::npos) << msg;
    }
    // A missing path says so too, and names the path.
    const std::string missing = store_->base + "/no-such.gguf";
    try {
        resolve_model(missing, roots);
        FAIL() << "a missing file resolved";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(missing + ": no such file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(resolve_model("", roots), std::runtime_error);
}

TEST_F(ModelStoreTest, DefaultModelIsTheBundledOneElseTheFirstRunnable) {
    std::vector<SearchDir> roots = fake_roots();
    std::optional<FoundModel> d = default_model(find_models(roots));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->name, "deep");  // the first root (env), first by name

    // A ./models holding stories260K.gguf wins, even after the env folders.
    const std::string local = store_->base + "/local-models";
    testing::fake_store_detail::write_model(fs::path(local) / "stories260K.gguf", "llama", 51);
    roots.push_back({local, "local"});
    d = default_model(find_models(roots));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->file, local + "/stories260K.gguf");
    fs::remove_all(local);

    // Unsupported models are listed but never picked.
    FoundModel odd;
    odd.name = "odd";
    odd.supported = false;
    FoundModel ok = odd;
    ok.name = "ok";
    ok.supported = true;
    EXPECT_EQ(default_model({odd, ok})->name, "ok");
    EXPECT_FALSE(default_model({odd}).has_value());
    EXPECT_FALSE(default_model(std::vector<FoundModel>{}).has_value());
}

}  // namespace
}  // namespace llmn::model
