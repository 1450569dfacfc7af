// The engine against llama.cpp's outputs in ../shared/reference (README there):
// teacher-forced logits at every greedy step, last-position logits, and the
// free-running greedy continuation through the incremental (KV cache) path.
//
// We keep an F16 KV cache like llama.cpp, but attention runs in f32 (llama.cpp's
// reference used flash attention); the differences land well inside tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/local_session.h"
#include "support/test_support.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {
namespace {

using nlohmann::json;

constexpr float kFloatTol = 0.05f;      // all-float weights (reference README)
constexpr float kQuantizedTol = 0.5f;   // any quantized tensor

std::vector<std::string> reference_files() {
    std::vector<std::string> out;
    const std::string dir = testing::shared_dir();
    if (dir.empty()) return {"(none)"};
    for (const auto& e : std::filesystem::directory_iterator(dir + "/reference"))
        if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
    std::sort(out.begin(), out.end());
    return out;
}

struct Reference {
    json j;
    std::shared_ptr<const Model> model;
    float tol = kFloatTol;
    std::set<int32_t> eog;
};

Reference load_reference(const std::string& stem) {
    Reference r;
    std::ifstream in(testing::shared_path("reference/" + stem + ".json"));
    r.j = json::parse(in);
    r.model = Model::load(testing::shared_path(r.j["model"]["file"].get<std::string>()));
    for (auto& [type, count] : r.j["model"]["tensor_types"].items())
        if (type != "F32" && type != "F16" && type != "BF16") r.tol = kQuantizedTol;
    for (auto& id : r.j["model"]["eog_ids"]) r.eog.insert(id.get<int32_t>());
    return r;
}

int32_t argmax_excluding(const float* row, int n, const std::set<int32_t>& skip) {
    int32_t best = -1;
    for (int i = 0; i < n; ++i)
        if (!skip.count(i) && (best < 0 || row[i] > row[best])) best = i;
    return best;
}

class ReferenceModel : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override { LLMN_REQUIRE_SHARED(); }
};

TEST_P(ReferenceModel, TeacherForcedLogitsMatchLlamaCppAtEveryStep) {
    Reference r = load_reference(GetParam());
    tensor::ThreadPool pool(2);
    int steps = 0;
    for (const json& p : r.j["prompts"]) {
        std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
        const auto greedy = p["greedy"]["ids"].get<std::vector<int32_t>>();
        const size_t n_prompt = ids.size();
        ids.insert(ids.end(), greedy.begin(), greedy.end() - 1);
        SessionConfig sc;
        sc.n_ctx = int(ids.size());
        LocalSession s(r.model, sc, pool);
        std::vector<float> logits;
        s.eval(ids, logits, true);
        const int nv = s.n_vocab();
        const json& steps_j = p["greedy"]["steps"];
        for (size_t i = 0; i < steps_j.size(); ++i, ++steps) {
            const float* row = logits.data() + (n_prompt - 1 + i) * nv;
            for (const json& tv : steps_j[i]["top"]) {
                const int32_t id = tv[0];
                EXPECT_NEAR(row[id], tv[1].get<float>(), r.tol) << p["name"] << " step " << i << " token " << id;
            }
            if (steps_j[i]["margin"].get<float>() > 2 * r.tol) {
                EXPECT_EQ(argmax_excluding(row, nv, r.eog), steps_j[i]["id"].get<int32_t>()) << p["name"] << " step " << i;
            }
        }
        // Last prompt position: the top-20 logits.
        const float* last = logits.data() + (n_prompt - 1) * nv;
        for (const json& tv : p["last_position_logits"]["top"])
            EXPECT_NEAR(last[tv[0].get<int32_t>()], tv[1].get<float>(), r.tol) << p["name"] << " last position";
    }
    EXPECT_GT(steps, 0);
}

TEST_P(ReferenceModel, GreedyDecodeMatchesUntilFirstNearTie) {
    Reference r = load_reference(GetParam());
    tensor::ThreadPool pool(2);
    for (const json& p : r.j["prompts"]) {
        std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
        SessionConfig sc;
        sc.n_ctx = int(ids.size()) + 40;
        LocalSession s(r.model, sc, pool);
        std::vector<float> logits;
        s.eval(ids, logits);
        for (const json& st : p["greedy"]["steps"]) {
            if (r.eog.count(st["top"][0][0].get<int32_t>()) || st["margin"].get<float>() <= 2 * r.tol) break;
            const int32_t got = argmax_excluding(logits.data(), s.n_vocab(), r.eog);
            ASSERT_EQ(got, st["id"].get<int32_t>()) << p["name"] << " at position " << s.n_past();
            s.eval({got}, logits);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllModels, ReferenceModel, ::testing::ValuesIn(reference_files()),
                         [](const auto& info) {
                             std::string n = info.param;
                             std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                             return n;
                         });

}  // namespace
}  // namespace llmn::engine
