// Tokenizer against llama.cpp (b10573): every tokenization reference in
// ../shared/reference/*.json (all four add_special x parse_special variants) and the
// llama.cpp tokenizer test cases shipped beside the vocab-only GGUFs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/gguf_reader.h"
#include "model/tokenizer.h"
#include "support/test_support.h"

namespace llmn::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& gguf_path) {
    auto file = GgufFile::open(gguf_path);
    return Tokenizer::create(Vocab::from_gguf(*file));
}

std::string ids_str(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += std::to_string(id) + " ";
    return s;
}

// Reference pieces are strings, or byte arrays where the piece is not valid UTF-8.
std::string piece_bytes(const json& p) {
    if (p.is_string()) return p.get<std::string>();
    std::string s;
    for (const auto& b : p) s += static_cast<char>(b.get<int>());
    return s;
}

std::vector<fs::path> reference_files() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(testing::shared_path("reference")))
        if (e.path().extension() == ".json") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(TokenizerReference, AllReferenceTextsAndVariants) {
    LLMN_REQUIRE_SHARED();
    int matched = 0, total = 0, errors_expected = 0, errors_matched = 0, pieces_checked = 0;
    for (const auto& path : reference_files()) {
        json ref = json::parse(testing::read_file(path.string()));
        if (!ref.contains("tokenization")) continue;
        const std::string model = ref["model"]["file"].get<std::string>();
        SCOPED_TRACE(path.filename().string());
        auto tok = load_tokenizer(testing::shared_path(model));
        // Model-level facts llama.cpp reports.
        EXPECT_EQ(tok->vocab().bos_id, ref["model"]["bos_id"].get<int>());
        EXPECT_EQ(tok->vocab().eos_id, ref["model"]["eos_id"].get<int>());
        EXPECT_EQ(tok->vocab().eog_ids, ref["model"]["eog_ids"].get<std::vector<int32_t>>());
        if (!ref["model"]["add_bos_token"].is_null()) {
            EXPECT_EQ(tok->vocab().add_bos, ref["model"]["add_bos_token"].get<bool>());
        }
        for (const auto& t : ref["tokenization"]) {
            const std::string text = t["text"].get<std::string>();
            for (const auto& r : t["results"]) {
                const bool add_special = r["add_special"].get<bool>();
                const bool parse_special = r["parse_special"].get<bool>();
                SCOPED_TRACE(t["name"].get<std::string>() + " add_special=" + std::to_string(add_special) +
                             " parse_special=" + std::to_string(parse_special));
                ++total;
                if (r.contains("llama_cpp_error")) {
                    ++errors_expected;
                    EXPECT_THROW(tok->encode(text, add_special, parse_special), TokenizerError);
                    try {
                        tok->encode(text, add_special, parse_special);
                    } catch (const TokenizerError&) {
                        ++errors_matched;
                        ++matched;
                    }
                    continue;
                }
                const auto want = r["ids"].get<std::vector<int32_t>>();
                std::vector<int32_t> got;
                try {
                    got = tok->encode(text, add_special, parse_special);
                } catch (const std::exception& e) {
                    ADD_FAILURE() << "threw: " << e.what();
                    continue;
                }
                EXPECT_EQ(ids_str(got), ids_str(want));
                if (got == want) ++matched;
                // Pieces as llama.cpp renders them (special tokens shown).
                if (r.contains("pieces") && got == want) {
                    const auto& pieces = r["pieces"];
                    ASSERT_EQ(pieces.size(), want.size());
                    for (size_t i = 0; i < want.size(); ++i) {
                        EXPECT_EQ(tok->token_to_piece(want[i], true), piece_bytes(pieces[i])) << "id " << want[i];
                        ++pieces_checked;
                    }
                }
            }
        }
    }
    std::printf("[ reference ] %d / %d text x variant cases match (%d / %d expected errors), %d pieces checked\n",
                matched, total, errors_matched, errors_expected, pieces_checked);
    EXPECT_EQ(matched, total);
    EXPECT_GT(total, 0);
}

// The prompts of the logit references (add_special = parse_special = true), and the prompts
// llama.cpp could not tokenize with that vocab.
TEST(TokenizerReference, PromptIds) {
    LLMN_REQUIRE_SHARED();
    int matched = 0, total = 0;
    for (const auto& path : reference_files()) {
        json ref = json::parse(testing::read_file(path.string()));
        SCOPED_TRACE(path.filename().string());
        auto tok = load_tokenizer(testing::shared_path(ref["model"]["file"].get<std::string>()));
        for (const auto& p : ref.value("prompts", json::array())) {
            ++total;
            const auto got = tok->encode(p["text"].get<std::string>(), true, true);
            EXPECT_EQ(ids_str(got), ids_str(p["ids"].get<std::vector<int32_t>>())) << p["name"];
            if (got == p["ids"].get<std::vector<int32_t>>()) ++matched;
        }
        for (const auto& p : ref.value("prompts_llama_cpp_cannot_tokenize", json::array())) {
            ++total;
            EXPECT_THROW(tok->encode(p["text"].get<std::string>(), true, true), TokenizerError) << p["name"];
            try {
                tok->encode(p["text"].get<std::string>(), true, true);
            } catch (const TokenizerError&) {
                ++matched;
            }
        }
    }
    std::printf("[ prompts ] %d / %d prompts match\n", matched, total);
}

// llama.cpp's test-tokenizer-0 cases: .inp texts and .out ids, add_special = parse_special = false.
void check_vocab_cases(const std::string& stem) {
    const std::string base = testing::shared_path("models/real/vocab/" + stem);
    auto tok = load_tokenizer(base);
    const std::string sep = "\n__ggml_vocab_test__\n";
    const auto split = [&](const std::string& s) {
        std::vector<std::string> parts;
        size_t start = 0;
        while (true) {
            const size_t p = s.find(sep, start);
            if (p == std::string::npos) {
                parts.push_back(s.substr(start));
                break;
            }
            parts.push_back(s.substr(start, p - start));
            start = p + sep.size();
        }
        return parts;
    };
    auto inputs = split(testing::read_file(base + ".inp"));
    // .out holds one line of ids per case (an empty line for an empty result).
    std::vector<std::string> outputs;
    {
        std::istringstream lines(testing::read_file(base + ".out"));
        for (std::string line; std::getline(lines, line);) outputs.push_back(line);
    }
    // The .inp ends with a separator, which leaves one empty element after the last case.
    if (!inputs.empty() && inputs.back().empty() && outputs.size() + 1 == inputs.size()) inputs.pop_back();
    ASSERT_EQ(inputs.size(), outputs.size());
    int matched = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        std::vector<int32_t> want;
        std::istringstream ss(outputs[i]);
        for (int32_t id; ss >> id;) want.push_back(id);
        const auto got = tok->encode(inputs[i], false, false);
        EXPECT_EQ(ids_str(got), ids_str(want)) << "case " << i << ": '" << inputs[i] << "'";
        if (got == want) ++matched;
    }
    std::printf("[ vocab ] %s: %d / %zu cases match\n", stem.c_str(), matched, inputs.size());
}

TEST(TokenizerReference, Phi3VocabCases) {
    LLMN_REQUIRE_SHARED();
    check_vocab_cases("phi3-mini-vocab-only.gguf");
}

TEST(TokenizerReference, Gpt2VocabCases) {
    LLMN_REQUIRE_SHARED();
    check_vocab_cases("gpt2-vocab-only.gguf");
}

// Concatenated pieces give the text back (SentencePiece adds its leading space).
TEST(TokenizerReference, PiecesRoundTrip) {
    LLMN_REQUIRE_SHARED();
    const std::vector<std::string> texts = {"Hello world", "The quick brown fox jumps over the lazy dog.",
                                            "  leading\ttab\n\nnewlines  ", "Caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD",
                                            "I love \xF0\x9F\xA6\x99!", "x = f(1, 2) + 3"};
    for (const char* stem : {"synthetic/llama-spm-mini-f32", "synthetic/qwen2-q8_0", "synthetic/llama-bpe-q4_0",
                             "synthetic/phi3-q5_k_m", "real/llama-stories260k-f32"}) {
        SCOPED_TRACE(stem);
        auto tok = load_tokenizer(testing::shared_path(std::string("models/") + stem + ".gguf"));
        const bool spm = tok->vocab().model == "llama";
        for (const auto& text : texts) {
            std::string joined;
            for (int32_t id : tok->encode(text, false, false)) joined += tok->token_to_piece(id);
            EXPECT_EQ(joined, spm ? " " + text : text);
        }
    }
}

}  // namespace
}  // namespace llmn::model
