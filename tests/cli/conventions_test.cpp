// CLI output conventions (DESIGN.md "The CLI"), on random-weight models written
// by the test and on the bundled stories260K, so none of this needs ../shared:
// stdout carries only the result, logs go to stderr, generate prints only the
// continuation and ends with a newline, --json output is one object per line
// ending with a summary, sampling is reproducible from a seed, temp 0 is greedy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "cli/cli_fixture.h"

namespace llmn::testing {
namespace {

using nlohmann::json;

// Parameters of RandomModelSpec `s` counted tensor by tensor (as write_random_model writes them).
uint64_t expected_params(const RandomModelSpec& s) {
    const uint64_t hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    const uint64_t d = s.n_embd, V = s.n_vocab, nq = s.n_head * hd, nkv = s.n_head_kv * hd, ff = s.n_ff;
    uint64_t n = V * d + d + (s.tied ? 0 : V * d);
    uint64_t layer = d + d * nq + 2 * d * nkv + nq * d + d + 3 * d * ff;
    if (s.arch == "qwen2") layer += nq + 2 * nkv;
    if (s.arch == "qwen3") layer += 2 * hd;
    return n + s.n_layer * layer;
}

TEST(CliInfo, JsonHasFamilyArchitectureParametersQuantizationLayersContext) {
    const ProcessResult p = llm_node({"info", random_llama_model(), "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = json_lines(p);
    ASSERT_EQ(lines.size(), 1u) << "info --json prints one JSON object: " << p.out;
    const json& j = lines[0];
    ASSERT_TRUE(j.is_object());
    const RandomModelSpec spec;
    EXPECT_EQ(j.value("family", ""), "Llama");
    EXPECT_EQ(j.value("architecture", ""), "llama");
    EXPECT_EQ(j.value("parameters", uint64_t(0)), expected_params(spec));
    EXPECT_EQ(j.value("quantization", ""), "F32");
    EXPECT_EQ(j.value("layers", 0), spec.n_layer);
    EXPECT_EQ(j.value("context", 0), 512);  // write_random_model's context_length
    EXPECT_EQ(j.value("n_vocab", 0), spec.n_vocab);
    EXPECT_EQ(j.value("n_embd", 0), spec.n_embd);
}

TEST(CliInfo, QuantizedModelReportsItsWeightTypeAndFamily) {
    const RandomModelSpec spec = q8_spec();
    const ProcessResult p = llm_node({"info", "-m", random_qwen2_q8_model(), "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = json_lines(p);
    ASSERT_EQ(lines.size(), 1u);
    const json& j = lines[0];
    EXPECT_EQ(j.value("family", ""), "Qwen2");
    EXPECT_EQ(j.value("architecture", ""), "qwen2");
    // No general.file_type in the file: the most common 2-D weight type.
    EXPECT_EQ(j.value("quantization", ""), "Q8_0");
    EXPECT_EQ(j.value("parameters", uint64_t(0)), expected_params(spec));
    EXPECT_EQ(j.value("layers", 0), spec.n_layer);
    EXPECT_EQ(j.value("tied_embeddings", false), true);
}

TEST(CliInfo, PlainTextNamesFamilyAndGoesToStdout) {
    const ProcessResult p = llm_node({"info", random_llama_model()});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_NE(p.out.find("Llama"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("layers"), std::string::npos) << p.out;
}

TEST(CliGenerate, PrintsOnlyTheContinuationOnStdoutEndingWithNewlineAndLogsOnStderr) {
    // The bundled model writes ASCII text, so the --json pieces (raw bytes as JSON
    // strings) concatenate to exactly what plain mode prints.
    const std::string prompt = "Once upon a time";
    const std::vector<std::string> common = {"generate", "-m", bundled_model(), "-p", prompt, "-n", "24", "--temp", "0",
                                             "--seed", "1", "--ignore-eos"};
    const ProcessResult plain = llm_node(common);
    ASSERT_EQ(plain.exit_code, 0) << plain.describe();
    std::vector<std::string> with_json = common;
    with_json.push_back("--json");
    const ProcessResult js = llm_node(with_json);
    ASSERT_EQ(js.exit_code, 0) << js.describe();
    std::string pieces;
    for (const auto& o : json_lines(js))
        if (o.contains("piece")) pieces += o["piece"].get<std::string>();
    ASSERT_FALSE(pieces.empty());
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(plain.out.back(), '\n') << "generate output must end with a newline";
    if (pieces.find("\xEF\xBF\xBD") == std::string::npos) {
        EXPECT_EQ(plain.out, pieces + "\n") << "stdout must be the continuation alone";
    }
    EXPECT_NE(plain.out.rfind(prompt, 0), 0u) << "the prompt is not echoed: " << plain.out;
    EXPECT_EQ(plain.out.find("tok/s"), std::string::npos) << "timings belong on stderr";
    EXPECT_FALSE(plain.err.empty()) << "generate logs its timings on stderr";
}

TEST(CliGenerate, RandomModelPlainOutputEndsWithNewlineAndHasNoLogLines) {
    const ProcessResult p = llm_node({"generate", "-m", random_llama_model(), "-p", "hello world", "-n", "8", "--temp", "0",
                                      "--ignore-eos"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    ASSERT_FALSE(p.out.empty());
    EXPECT_EQ(p.out.back(), '\n');
    EXPECT_EQ(p.out.find("tok/s"), std::string::npos);
    EXPECT_EQ(p.out.find("prompt:"), std::string::npos);
    EXPECT_NE(p.err.find("tok"), std::string::npos) << "stderr: " << p.err;
}

TEST(CliGenerate, ZeroTokensPrintsJustTheNewline) {
    const ProcessResult p = llm_node({"generate", "-m", random_llama_model(), "-p", "hello", "-n", "0"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, "\n");
}

TEST(CliGenerate, JsonPrintsOneObjectPerTokenThenASummary) {
    const std::string m = random_llama_model(), prompt = "hello world";
    const ProcessResult p =
        llm_node({"generate", "-m", m, "-p", prompt, "-n", "12", "--temp", "0", "--ignore-eos", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = json_lines(p);
    ASSERT_EQ(lines.size(), 13u) << "12 token lines and a summary: " << p.out;
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
        const json& o = lines[i];
        ASSERT_TRUE(o.is_object() && o.contains("id") && o.contains("piece")) << o.dump();
        EXPECT_TRUE(o["id"].is_number_integer()) << o.dump();
        EXPECT_TRUE(o["piece"].is_string()) << o.dump();
        EXPECT_GE(o["id"].get<int>(), 0);
        EXPECT_LT(o["id"].get<int>(), RandomModelSpec{}.n_vocab);
    }
    const json& s = lines.back();
    ASSERT_TRUE(s.is_object() && s.contains("n_prompt") && s.contains("n_gen")) << s.dump();
    EXPECT_FALSE(s.contains("id")) << "the summary is not a token line";
    EXPECT_EQ(s["n_gen"].get<int>(), 12);
    const ProcessResult tok = llm_node({"tokenize", "-m", m, "-p", prompt, "--json"});
    ASSERT_EQ(tok.exit_code, 0) << tok.describe();
    EXPECT_EQ(s["n_prompt"].get<size_t>(), json::parse(split_lines(tok.out).back()).size())
        << "n_prompt equals the prompt's token count from tokenize";
    EXPECT_EQ(p.out.back(), '\n');
}

TEST(CliGenerate, SameSeedGivesSameTextAndSeedsMatter) {
    const std::string m = random_llama_model();
    auto sample = [&](const std::string& seed) {
        const ProcessResult p = llm_node({"generate", "-m", m, "-p", "hello", "-n", "16", "--temp", "1.0", "--seed", seed,
                                          "--ignore-eos", "--json"});
        EXPECT_EQ(p.exit_code, 0) << p.describe();
        return generated_ids(p);
    };
    const auto a = sample("42"), b = sample("42");
    ASSERT_EQ(a.size(), 16u);
    EXPECT_EQ(a, b) << "the same seed must give the same tokens";
    std::set<std::vector<int32_t>> distinct = {a};
    for (const char* seed : {"1", "2", "3", "4"}) distinct.insert(sample(seed));
    EXPECT_GT(distinct.size(), 1u) << "five seeds at temp 1 all gave the same 16 tokens: --seed seems ignored";
}

TEST(CliGenerate, TempZeroIsDeterministicAndIgnoresTheSeed) {
    const std::string m = random_llama_model();
    auto greedy = [&](const std::string& seed) {
        const ProcessResult p = llm_node({"generate", "-m", m, "-p", "hello world", "-n", "16", "--temp", "0", "--seed", seed,
                                          "--ignore-eos", "--json"});
        EXPECT_EQ(p.exit_code, 0) << p.describe();
        return generated_ids(p);
    };
    const auto a = greedy("1");
    ASSERT_EQ(a.size(), 16u);
    EXPECT_EQ(a, greedy("1"));
    EXPECT_EQ(a, greedy("999"));
}

TEST(CliGenerate, GreedyFirstTokenIsTheArgmaxThatLogitsPrints) {
    const std::string m = random_llama_model(), prompt = "hello world";
    const ProcessResult tok = llm_node({"tokenize", "-m", m, "-p", prompt, "--json"});
    ASSERT_EQ(tok.exit_code, 0) << tok.describe();
    const auto ids = json::parse(split_lines(tok.out).back()).get<std::vector<int32_t>>();
    std::string csv;
    for (int32_t id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);
    const ProcessResult lg = llm_node({"logits", "-m", m, "--ids", csv, "--top", "3"});
    ASSERT_EQ(lg.exit_code, 0) << lg.describe();
    const auto rows = json_lines(lg);
    ASSERT_EQ(rows.size(), 1u) << "without --all only the last position";
    EXPECT_EQ(rows[0]["pos"].get<size_t>(), ids.size() - 1);
    const ProcessResult gen = llm_node({"generate", "-m", m, "-p", prompt, "-n", "1", "--temp", "0", "--ignore-eos", "--json"});
    ASSERT_EQ(gen.exit_code, 0) << gen.describe();
    const auto got = generated_ids(gen);
    ASSERT_EQ(got.size(), 1u);
    // --ignore-eos excludes the EOS id (2 in the random vocab) from sampling.
    int32_t best = -1;
    for (const auto& e : rows[0]["top"])
        if (best < 0 && e[0].get<int32_t>() != 2) best = e[0].get<int32_t>();
    EXPECT_EQ(got[0], best) << "logits line: " << rows[0].dump();
}

TEST(CliGenerate, PromptFileGivesTheSameOutputAsDashP) {
    const std::string m = random_llama_model(), file = temp_path("cli-prompt.txt");
    write_bytes(file, "hello world");
    const std::vector<std::string> tail = {"-n", "8", "--temp", "0", "--ignore-eos", "--json"};
    std::vector<std::string> a = {"generate", "-m", m, "-p", "hello world"}, b = {"generate", "-m", m, "-f", file};
    a.insert(a.end(), tail.begin(), tail.end());
    b.insert(b.end(), tail.begin(), tail.end());
    const ProcessResult pa = llm_node(a), pb = llm_node(b);
    ASSERT_EQ(pa.exit_code, 0) << pa.describe();
    ASSERT_EQ(pb.exit_code, 0) << pb.describe();
    EXPECT_EQ(generated_ids(pa), generated_ids(pb));
}

TEST(CliGenerate, BundledStories260KWritesText) {
    const ProcessResult p = llm_node({"generate", "-m", bundled_model(), "-p", "Once upon a time", "-n", "32", "--seed", "3"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const size_t letters = size_t(std::count_if(p.out.begin(), p.out.end(), [](char c) { return std::isalpha((unsigned char)c); }));
    EXPECT_GE(letters, 10u) << "stdout: " << p.out;
    EXPECT_EQ(p.out.back(), '\n');
    const ProcessResult info = llm_node({"info", bundled_model(), "--json"});
    ASSERT_EQ(info.exit_code, 0) << info.describe();
    const json j = json::parse(split_lines(info.out).back());
    EXPECT_EQ(j.value("architecture", ""), "llama");
    EXPECT_EQ(j.value("parameters", uint64_t(0)), 292800u) << "models/README.md: 292,800 parameters";
    EXPECT_EQ(j.value("quantization", ""), "F32");
}

// ---- tokenize ----

// The random models hold an SPM vocab: <unk> <s> </s>, 256 byte tokens <0x00>..<0xFF>
// (ids 3..258), then "\u2581w0", "\u2581w1", ... The SPM merge never reaches
// "\u2581w5" (no "\u2581w" or "w5" piece to merge through), so every character
// falls back to its bytes, as llama.cpp's llm_tokenizer_spm does.
int32_t byte_id(unsigned char b) { return 3 + b; }

TEST(CliTokenize, RandomVocabModelGivesBosThenByteFallbackIds) {
    const std::string m = random_llama_model();
    const ProcessResult p = llm_node({"tokenize", "-m", m, "-p", "w5", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = split_lines(p.out);
    ASSERT_EQ(lines.size(), 1u) << "tokenize --json prints one array: " << p.out;
    const auto ids = json::parse(lines[0]).get<std::vector<int32_t>>();
    const std::vector<int32_t> want = {1, byte_id(0xE2), byte_id(0x96), byte_id(0x81), byte_id('w'), byte_id('5')};
    EXPECT_EQ(ids, want);
    const ProcessResult nb = llm_node({"tokenize", "-m", m, "-p", "w5", "--json", "--no-bos"});
    ASSERT_EQ(nb.exit_code, 0) << nb.describe();
    EXPECT_EQ(json::parse(split_lines(nb.out).back()).get<std::vector<int32_t>>(),
              std::vector<int32_t>(want.begin() + 1, want.end()));
}

TEST(CliTokenize, SpecialTokenTextIsParsedUnlessNoParseSpecial) {
    const std::string m = random_llama_model();
    const ProcessResult p = llm_node({"tokenize", "-m", m, "-p", "</s>", "--json", "--no-bos"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto ids = json::parse(split_lines(p.out).back()).get<std::vector<int32_t>>();
    ASSERT_FALSE(ids.empty());
    EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end()) << "'</s>' parses to the EOS id 2";
    const ProcessResult q = llm_node({"tokenize", "-m", m, "-p", "</s>", "--json", "--no-bos", "--no-parse-special"});
    ASSERT_EQ(q.exit_code, 0) << q.describe();
    const auto plain = json::parse(split_lines(q.out).back()).get<std::vector<int32_t>>();
    EXPECT_EQ(std::find(plain.begin(), plain.end(), 2), plain.end()) << "--no-parse-special keeps '</s>' as text";
}

TEST(CliTokenize, PromptIsTakenVerbatimWithoutEscapeProcessing) {
    const std::string m = random_llama_model();
    const ProcessResult lit = llm_node({"tokenize", "-m", m, "-p", "a\\nb", "--json", "--no-bos"});
    const ProcessResult nl = llm_node({"tokenize", "-m", m, "-p", "a\nb", "--json", "--no-bos"});
    ASSERT_EQ(lit.exit_code, 0) << lit.describe();
    ASSERT_EQ(nl.exit_code, 0) << nl.describe();
    const auto a = json::parse(split_lines(lit.out).back()).get<std::vector<int32_t>>();
    const auto b = json::parse(split_lines(nl.out).back()).get<std::vector<int32_t>>();
    EXPECT_NE(std::find(a.begin(), a.end(), byte_id('\\')), a.end()) << "the backslash stays a backslash";
    EXPECT_NE(std::find(b.begin(), b.end(), byte_id('\n')), b.end());
    EXPECT_NE(a, b);
}

TEST(CliTokenize, PlainOutputListsTheSameIdsAsJson) {
    const std::string m = random_llama_model();
    const ProcessResult js = llm_node({"tokenize", "-m", m, "-p", "hi there", "--json"});
    const ProcessResult pl = llm_node({"tokenize", "-m", m, "-p", "hi there"});
    ASSERT_EQ(js.exit_code, 0) << js.describe();
    ASSERT_EQ(pl.exit_code, 0) << pl.describe();
    const auto want = json::parse(split_lines(js.out).back()).get<std::vector<int32_t>>();
    std::vector<int32_t> got;
    static const std::regex kRow(R"(^\s*(\d+) -> .*$)");
    for (const std::string& line : split_lines(pl.out)) {
        std::smatch mm;
        ASSERT_TRUE(std::regex_match(line, mm, kRow)) << "row '" << line << "'";
        got.push_back(std::stoi(mm[1].str()));
    }
    EXPECT_EQ(got, want);
}

// ---- logits and perplexity output shapes ----

TEST(CliLogits, AllPrintsOneSortedLinePerPosition) {
    const ProcessResult p = llm_node({"logits", "-m", random_llama_model(), "--ids", "1,50,60,70", "--top", "5", "--all"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto rows = json_lines(p);
    ASSERT_EQ(rows.size(), 4u);
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i]["pos"].get<size_t>(), i);
        const auto& top = rows[i]["top"];
        ASSERT_EQ(top.size(), 5u);
        for (size_t k = 1; k < top.size(); ++k) EXPECT_GE(top[k - 1][1].get<double>(), top[k][1].get<double>());
    }
}

TEST(CliPerplexity, LastStdoutLineIsPplPlusMinusAndJsonAgrees) {
    const std::string m = random_llama_model(), text = temp_path("cli-ppl.txt");
    std::string body;
    for (int i = 0; i < 40; ++i) body += "the cat sat on the mat and looked at the dog. ";
    write_bytes(text, body);
    const ProcessResult p = llm_node({"perplexity", "-m", m, "-f", text, "-c", "32"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = split_lines(p.out);
    ASSERT_FALSE(lines.empty());
    static const std::regex kLine(R"(PPL = ([0-9.eE+-]+) \+/- ([0-9.eE+-]+))");
    std::smatch mm;
    ASSERT_TRUE(std::regex_match(lines.back(), mm, kLine)) << "last line '" << lines.back() << "'";
    const double ppl = std::stod(mm[1].str());
    EXPECT_GT(ppl, 1.0);
    const ProcessResult js = llm_node({"perplexity", "-m", m, "-f", text, "-c", "32", "--json"});
    ASSERT_EQ(js.exit_code, 0) << js.describe();
    const json j = json::parse(split_lines(js.out).back());
    EXPECT_NEAR(j["ppl"].get<double>(), ppl, ppl * 1e-3);
    EXPECT_GE(j["chunks"].get<int>(), 1);
    EXPECT_EQ(j["scored_tokens"].get<int>(), j["chunks"].get<int>() * (32 / 2 - 1)) << "second half of each chunk";
}

TEST(CliPerplexity, BatchSizeDoesNotChangeTheResult) {
    // -b splits each chunk into several forward calls; the scores must not move.
    const std::string text = temp_path("cli-ppl-story.txt");
    std::string body;
    for (int i = 0; i < 12; ++i)
        body += "Once upon a time, there was a little girl named Lily. She loved to play in the park with her dog. ";
    write_bytes(text, body);
    auto ppl = [&](const std::string& b) {
        const ProcessResult p = llm_node({"perplexity", "-m", bundled_model(), "-f", text, "-c", "64", "-b", b, "--json"});
        EXPECT_EQ(p.exit_code, 0) << p.describe();
        return p.exit_code == 0 ? json::parse(split_lines(p.out).back())["ppl"].get<double>() : -1.0;
    };
    const double whole = ppl("64");
    ASSERT_GT(whole, 1.0);
    EXPECT_NEAR(ppl("16"), whole, whole * 1e-3);
    EXPECT_NEAR(ppl("7"), whole, whole * 1e-3);
    EXPECT_LT(whole, 50.0) << "stories260K on TinyStories-style text is far from uniform";
}

TEST(CliLogits, TokenIdOutsideTheVocabularyExitsOneNamingIt) {
    const ProcessResult p = llm_node({"logits", "-m", random_llama_model(), "--ids", "1,99999"});
    EXPECT_EQ(p.exit_code, 1) << p.describe();
    EXPECT_TRUE(p.out.empty()) << p.out;
    EXPECT_NE(p.err.find("99999"), std::string::npos) << p.err;
}

TEST(CliGenerate, StopsWhenTheContextIsFullWithANoteOnStderr) {
    const std::string m = random_llama_model();
    const ProcessResult p =
        llm_node({"generate", "-m", m, "-p", "hello", "-c", "20", "-n", "50", "--temp", "0", "--ignore-eos", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto lines = json_lines(p);
    ASSERT_FALSE(lines.empty());
    const json& s = lines.back();
    const int n_prompt = s["n_prompt"].get<int>(), n_gen = s["n_gen"].get<int>();
    EXPECT_GT(n_gen, 0);
    EXPECT_LE(n_prompt + n_gen, 21) << "20 positions, plus one last token sampled without being evaluated";
    EXPECT_EQ(generated_ids(p).size(), size_t(n_gen));
    EXPECT_NE(p.err.find("context"), std::string::npos) << p.err;
}

}  // namespace
}  // namespace llmn::testing
