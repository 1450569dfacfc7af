// The llm-node binary against llama.cpp's outputs in ../shared/reference, through
// the same command lines the product owner's checks use (../shared/checks/*.py):
// tokenize --json, generate --temp 0 --json, logits --ids --top 64 --all, and
// perplexity -c 128 -b 128. Skips when ../shared is absent (a fresh clone).
//
// Matching rules (../shared/reference/README.md): tol 0.05 on raw logits for
// all-float models, 0.5 for quantized ones; argmax (non-EOG) equal where the
// reference margin exceeds 2 tol; free-running greedy ids equal up to the first
// step whose raw top-1 is an EOG id or whose margin is <= 2 tol.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "cli/run_process.h"
#include "support/test_support.h"

namespace llmn::testing {
namespace {

using nlohmann::json;

constexpr double kFloatTol = 0.05;           // all-float weights (reference README)
constexpr double kQuantizedTol = 0.5;        // any quantized tensor
constexpr double kPplFloatTol = 0.01;        // |ln PPL - ln ref|, float models (perplexity README)
constexpr double kPplQuantizedTol = 0.05;    // quantized models
constexpr double kTokenizeTimeout = 60;      // seconds per process
constexpr double kEvalTimeout = 300;
constexpr double kPerplexityTimeout = 500;

std::vector<std::string> reference_files() {
    std::vector<std::string> out;
    const std::string dir = shared_dir();
    if (dir.empty()) return {"none"};
    for (const auto& e : std::filesystem::directory_iterator(dir + "/reference"))
        if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
    std::sort(out.begin(), out.end());
    return out.empty() ? std::vector<std::string>{"none"} : out;
}

struct Reference {
    json j;
    std::string model;  // absolute path
    double tol = kFloatTol;
    std::set<int32_t> eog;
    bool synthetic = false;
};

Reference load_reference(const std::string& stem) {
    Reference r;
    std::ifstream in(shared_path("reference/" + stem + ".json"));
    r.j = json::parse(in);
    const std::string file = r.j["model"]["file"].get<std::string>();
    r.model = shared_path(file);
    r.synthetic = file.find("models/synthetic/") != std::string::npos;
    for (auto& [type, count] : r.j["model"]["tensor_types"].items())
        if (type != "F32" && type != "F16" && type != "BF16") r.tol = kQuantizedTol;
    for (auto& id : r.j["model"]["eog_ids"]) r.eog.insert(id.get<int32_t>());
    return r;
}

std::string join_ids(const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

std::string show_ids(const std::vector<int32_t>& ids, size_t max = 40) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size() && i < max; ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s + (ids.size() > max ? ",...]" : "]");
}

// The ids of `tokenize --json` (its last stdout line, a JSON array of ints), or
// nullopt with a reason.
std::optional<std::vector<int32_t>> parse_id_array(const std::string& out, std::string* why) {
    const auto lines = split_lines(out);
    if (lines.empty()) {
        *why = "empty stdout";
        return std::nullopt;
    }
    try {
        const json j = json::parse(lines.back());
        if (!j.is_array()) throw std::runtime_error("not an array");
        std::vector<int32_t> ids;
        for (const auto& v : j) ids.push_back(v.get<int32_t>());
        return ids;
    } catch (const std::exception& e) {
        *why = std::string("unparsable last line '") + lines.back().substr(0, 120) + "': " + e.what();
        return std::nullopt;
    }
}

class ReferenceCli : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        LLMN_REQUIRE_SHARED();
        ref_ = load_reference(GetParam());
        ASSERT_TRUE(std::filesystem::exists(ref_.model)) << ref_.model;
    }
    std::string bin() const { return llm_node_binary(); }
    Reference ref_;
};

// The variant add_special = parse_special = true (what a prompt gets), as
// tokenize_check.py compares it; a variant llama.cpp could not tokenize must be
// an error (exit 1 with a message on stderr), not a crash or a silent guess.
TEST_P(ReferenceCli, TokenizeJsonEqualsLlamaCppIds) {
    int checked = 0;
    for (const auto& t : ref_.j["tokenization"]) {
        const std::string text = t["text"].get<std::string>();
        if (text.empty()) continue;
        for (const auto& v : t["results"]) {
            if (!v["add_special"].get<bool>() || !v["parse_special"].get<bool>()) continue;
            const ProcessResult p = run_process({bin(), "tokenize", "-m", ref_.model, "-p", text, "--json"}, kTokenizeTimeout);
            const std::string where = GetParam() + "/" + t["name"].get<std::string>();
            ++checked;
            if (v.contains("llama_cpp_error")) {
                EXPECT_EQ(p.exit_code, 1) << where << ": llama.cpp cannot tokenize this text; want exit 1, got "
                                          << p.describe();
                EXPECT_FALSE(p.err.empty()) << where << ": no error message on stderr";
                continue;
            }
            ASSERT_FALSE(p.timed_out) << where << ": " << p.describe();
            if (p.exit_code != 0) {
                ADD_FAILURE() << where << ": " << p.describe();
                continue;
            }
            std::string why;
            const auto got = parse_id_array(p.out, &why);
            if (!got) {
                ADD_FAILURE() << where << ": " << why;
                continue;
            }
            const std::vector<int32_t> want = v["ids"].get<std::vector<int32_t>>();
            EXPECT_EQ(*got, want) << where << " text " << json(text).dump() << "\n  got  " << show_ids(*got)
                                  << "\n  want " << show_ids(want);
        }
    }
    EXPECT_GT(checked, 0);
}

// The three other variants through --no-bos (add_special = false) and
// --no-parse-special (parse_special = false).
TEST_P(ReferenceCli, TokenizeNoBosAndNoParseSpecialVariantsEqualLlamaCpp) {
    for (const auto& t : ref_.j["tokenization"]) {
        const std::string text = t["text"].get<std::string>();
        if (text.empty()) continue;
        for (const auto& v : t["results"]) {
            const bool add = v["add_special"].get<bool>(), parse = v["parse_special"].get<bool>();
            if (add && parse) continue;
            std::vector<std::string> argv = {bin(), "tokenize", "-m", ref_.model, "-p", text, "--json"};
            if (!add) argv.push_back("--no-bos");
            if (!parse) argv.push_back("--no-parse-special");
            const ProcessResult p = run_process(argv, kTokenizeTimeout);
            const std::string where = GetParam() + "/" + t["name"].get<std::string>() + " add_special=" +
                                      (add ? "true" : "false") + " parse_special=" + (parse ? "true" : "false");
            if (v.contains("llama_cpp_error")) {
                EXPECT_EQ(p.exit_code, 1) << where << ": want an error (exit 1), got " << p.describe();
                continue;
            }
            if (p.exit_code != 0) {
                ADD_FAILURE() << where << ": " << p.describe();
                continue;
            }
            std::string why;
            const auto got = parse_id_array(p.out, &why);
            if (!got) {
                ADD_FAILURE() << where << ": " << why;
                continue;
            }
            const std::vector<int32_t> want = v["ids"].get<std::vector<int32_t>>();
            EXPECT_EQ(*got, want) << where << "\n  got  " << show_ids(*got) << "\n  want " << show_ids(want);
        }
    }
}

// Reference greedy ids up to the first step whose raw top-1 is EOG or whose
// margin is a near tie (engine_check.py's expected()).
std::vector<int32_t> expected_greedy(const json& prompt, const Reference& r) {
    std::vector<int32_t> ids;
    for (const auto& st : prompt["greedy"]["steps"]) {
        if (r.eog.count(st["top"][0][0].get<int32_t>()) || st["margin"].get<double>() <= 2 * r.tol) break;
        ids.push_back(st["id"].get<int32_t>());
    }
    return ids;
}

TEST_P(ReferenceCli, GenerateGreedyJsonEqualsReferenceUpToFirstNearTie) {
    for (const auto& pr : ref_.j["prompts"]) {
        const std::string name = GetParam() + "/" + pr["name"].get<std::string>();
        const std::vector<int32_t> want = expected_greedy(pr, ref_);
        const size_t n_steps = pr["greedy"]["steps"].size();
        if (ref_.synthetic) {
            EXPECT_EQ(want.size(), n_steps) << name << ": synthetic references are tie-free for all steps";
        }
        const ProcessResult p = run_process({bin(), "generate", "-m", ref_.model, "-p", pr["text"].get<std::string>(), "-n",
                                             std::to_string(n_steps), "--temp", "0", "--seed", "1", "--json"},
                                            kEvalTimeout);
        if (p.exit_code != 0) {
            ADD_FAILURE() << name << ": " << p.describe();
            continue;
        }
        std::vector<int32_t> got;
        std::optional<json> summary;
        for (const std::string& line : split_lines(p.out)) {
            json o;
            try {
                o = json::parse(line);
            } catch (const std::exception& e) {
                ADD_FAILURE() << name << ": stdout line is not JSON: " << line.substr(0, 120);
                continue;
            }
            if (o.contains("id")) got.push_back(o["id"].get<int32_t>());
            else summary = o;
        }
        ASSERT_TRUE(summary.has_value()) << name << ": no summary line";
        EXPECT_EQ((*summary)["n_prompt"].get<size_t>(), pr["ids"].size()) << name << ": prompt token count";
        EXPECT_EQ((*summary)["n_gen"].get<size_t>(), got.size()) << name;
        const std::vector<int32_t> prefix(got.begin(), got.begin() + std::min(got.size(), want.size()));
        if (prefix != want) {
            size_t step = 0;
            while (step < prefix.size() && prefix[step] == want[step]) ++step;
            ADD_FAILURE() << name << ": greedy ids differ at step " << step << " (of " << want.size()
                          << " tie-free steps): got " << (step < got.size() ? std::to_string(got[step]) : "nothing (stopped)")
                          << ", want " << want[step] << "\n  got  " << show_ids(got) << "\n  want " << show_ids(want);
        }
    }
}

// Teacher-forced: the prompt ids then the reference's own greedy ids, one batch,
// every position printed (logits_check.py).
TEST_P(ReferenceCli, LogitsTeacherForcedWithinToleranceAtEveryStep) {
    for (const auto& pr : ref_.j["prompts"]) {
        const std::string name = GetParam() + "/" + pr["name"].get<std::string>();
        std::vector<int32_t> ids = pr["ids"].get<std::vector<int32_t>>();
        const std::vector<int32_t> greedy = pr["greedy"]["ids"].get<std::vector<int32_t>>();
        const size_t n_prompt = ids.size();
        ids.insert(ids.end(), greedy.begin(), greedy.end() - 1);
        const ProcessResult p =
            run_process({bin(), "logits", "-m", ref_.model, "--ids", join_ids(ids), "--top", "64", "--all"}, kEvalTimeout);
        if (p.exit_code != 0) {
            ADD_FAILURE() << name << ": " << p.describe();
            continue;
        }
        std::map<int, std::map<int32_t, double>> rows;
        for (const std::string& line : split_lines(p.out)) {
            try {
                const json o = json::parse(line);
                auto& row = rows[o["pos"].get<int>()];
                for (const auto& e : o["top"]) row[e[0].get<int32_t>()] = e[1].get<double>();
                EXPECT_EQ(o["top"].size(), 64u) << name << " pos " << o["pos"];
            } catch (const std::exception& e) {
                ADD_FAILURE() << name << ": bad logits line '" << line.substr(0, 120) << "': " << e.what();
            }
        }
        EXPECT_EQ(rows.size(), ids.size()) << name << ": --all prints one line per position";
        int failures = 0;
        double worst = 0;
        const auto& steps = pr["greedy"]["steps"];
        for (size_t i = 0; i < steps.size(); ++i) {
            const auto& st = steps[i];
            const int pos = int(n_prompt) - 1 + int(i);
            auto it = rows.find(pos);
            if (it == rows.end()) {
                if (failures++ < 5) ADD_FAILURE() << name << " step " << i << ": no row for pos " << pos;
                continue;
            }
            const auto& mine = it->second;
            std::string bad;
            for (const auto& e : st["top"]) {
                const int32_t id = e[0].get<int32_t>();
                const double want = e[1].get<double>();
                auto m = mine.find(id);
                if (m == mine.end()) {
                    bad += " id " + std::to_string(id) + " (ref " + std::to_string(want) + ") not in our top 64;";
                    continue;
                }
                const double d = std::fabs(m->second - want);
                worst = std::max(worst, d);
                if (d > ref_.tol)
                    bad += " id " + std::to_string(id) + " got " + std::to_string(m->second) + " want " + std::to_string(want) + ";";
            }
            int32_t best = -1;
            double best_v = -1e30;
            for (const auto& [id, v] : mine)
                if (!ref_.eog.count(id) && v > best_v) best = id, best_v = v;
            const double margin = st["margin"].get<double>();
            if (margin > 2 * ref_.tol && best != st["id"].get<int32_t>())
                bad += " argmax " + std::to_string(best) + " want " + std::to_string(st["id"].get<int32_t>()) +
                       " (margin " + std::to_string(margin) + ");";
            if (!bad.empty() && failures++ < 5) ADD_FAILURE() << name << " step " << i << " (tol " << ref_.tol << "):" << bad;
        }
        EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << steps.size()
                               << " steps out of tolerance; worst diff " << worst;
    }
}

INSTANTIATE_TEST_SUITE_P(AllModels, ReferenceCli, ::testing::ValuesIn(reference_files()),
                         [](const auto& info) {
                             std::string s = info.param;
                             for (char& c : s)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return s;
                         });

// ---- perplexity (../shared/reference/perplexity/perplexity.json) ----

struct PplCase {
    std::string model;  // relative to shared
    int chunks = 0;
    double ppl = 0;
};

std::vector<PplCase> ppl_cases() {
    const std::string dir = shared_dir();
    if (dir.empty()) return {PplCase{"none", 0, 0}};
    std::ifstream in(dir + "/reference/perplexity/perplexity.json");
    const json j = json::parse(in);
    std::vector<PplCase> out;
    for (const auto& r : j["results"])
        out.push_back({r["model"].get<std::string>(), r["chunks"].get<int>(), r["ppl"].get<double>()});
    return out;
}

void PrintTo(const PplCase& c, std::ostream* os) { *os << c.model << " (PPL " << c.ppl << ")"; }

class PerplexityCli : public ::testing::TestWithParam<PplCase> {};

TEST_P(PerplexityCli, MatchesLlamaPerplexity) {
    LLMN_REQUIRE_SHARED();
    const PplCase& c = GetParam();
    const std::string model = shared_path(c.model), text = shared_path("reference/perplexity/stories.txt");
    ASSERT_TRUE(std::filesystem::exists(model)) << model;
    const std::string stem = std::filesystem::path(c.model).stem().string();
    const std::string type = stem.substr(stem.rfind('-') + 1);
    const double tol = (type == "f32" || type == "f16" || type == "bf16") ? kPplFloatTol : kPplQuantizedTol;
    const ProcessResult p =
        run_process({llm_node_binary(), "perplexity", "-m", model, "-f", text, "-c", "128", "-b", "128"}, kPerplexityTimeout);
    ASSERT_EQ(p.exit_code, 0) << c.model << ": " << p.describe();
    const auto lines = split_lines(p.out);
    ASSERT_FALSE(lines.empty()) << c.model << ": nothing on stdout";
    static const std::regex kLine(R"(PPL = ([0-9.eE+-]+) \+/- ([0-9.eE+-]+))");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines.back(), m, kLine)) << c.model << ": last stdout line '" << lines.back()
                                                          << "' is not 'PPL = X +/- Y'";
    const double got = std::stod(m[1].str()), se = std::stod(m[2].str());
    ASSERT_GT(got, 0.0);
    EXPECT_GE(se, 0.0);
    EXPECT_LE(std::fabs(std::log(got) - std::log(c.ppl)), tol)
        << c.model << ": PPL got " << got << " want " << c.ppl << " (|ln diff| " << std::fabs(std::log(got) - std::log(c.ppl))
        << ", tol " << tol << ")";
    // The same number of chunks: stderr says "N chunks of 128" (a log line, so
    // only checked when present).
    static const std::regex kChunks(R"((\d+) chunks of)");
    if (std::regex_search(p.err, m, kChunks)) {
        EXPECT_EQ(std::stoi(m[1].str()), c.chunks) << c.model << ": chunk count";
    }
}

INSTANTIATE_TEST_SUITE_P(SevenModels, PerplexityCli, ::testing::ValuesIn(ppl_cases()), [](const auto& info) {
    std::string s = std::filesystem::path(info.param.model).stem().string();
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
});

}  // namespace
}  // namespace llmn::testing
