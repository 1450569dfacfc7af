// Exit statuses (DESIGN.md "The CLI"): 0 on success, 1 on a runtime error with a
// message on stderr naming what and where, 2 on bad usage. Errors never crash
// (no signal), never hang, and leave stdout empty.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli_fixture.h"
#include "model/gguf_writer.h"

namespace llmn::testing {
namespace {

void expect_usage_error(const std::vector<std::string>& args) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    const ProcessResult p = llm_node(args);
    EXPECT_EQ(p.exit_code, 2) << "llm-node" << cmd << ": " << p.describe();
    EXPECT_FALSE(p.err.empty()) << "llm-node" << cmd << ": no message on stderr";
    EXPECT_TRUE(p.out.empty()) << "llm-node" << cmd << ": stdout '" << p.out << "'";
}

// Exit 1, stdout empty, stderr naming each of `needles` (the file, the reason).
void expect_runtime_error(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    const ProcessResult p = llm_node(args);
    EXPECT_EQ(p.exit_code, 1) << "llm-node" << cmd << ": " << p.describe();
    EXPECT_TRUE(p.out.empty()) << "llm-node" << cmd << ": stdout '" << p.out.substr(0, 200) << "'";
    for (const std::string& n : needles)
        EXPECT_NE(p.err.find(n), std::string::npos) << "llm-node" << cmd << ": stderr does not name '" << n << "': " << p.err;
}

TEST(CliExitStatus, UsageErrorsExitTwo) {
    const std::string m = random_llama_model();
    expect_usage_error({"generate", "-m", m, "-p", "hi", "--bogus"});           // unknown option
    expect_usage_error({"generate", "-p", "hi", "-n", "4"});                    // missing -m
    expect_usage_error({"generate", "-m", m, "-p", "hi", "-n", "abc"});         // malformed integer
    expect_usage_error({"generate", "-m", m, "-p", "hi", "-n", "12x"});         // trailing garbage
    expect_usage_error({"generate", "-m", m, "-p", "hi", "--temp", "warm"});    // malformed number
    expect_usage_error({"generate", "-m", m, "-p", "hi", "-n"});                // missing value
    expect_usage_error({"generate", "-m", m, "-n", "4"});                       // missing prompt
    expect_usage_error({"tokenize", "-p", "hi"});                               // missing -m
    expect_usage_error({"tokenize", "-m", m, "-p", "hi", "--frobnicate"});
    expect_usage_error({"info"});                                               // no model
    expect_usage_error({"logits", "-m", m, "--ids", "1,x,3"});                  // malformed id
    expect_usage_error({"logits", "-m", m, "--ids", "1,2", "--top", "many"});
    expect_usage_error({"perplexity", "-m", m});                                // no -f
    expect_usage_error({"no-such-command"});
    expect_usage_error({});
    // DHT flags ask for the swarm: never dropped in silence for a local run.
    expect_usage_error({"generate", "-m", m, "-p", "hi", "--bootstrap", "127.0.0.1:9"});
    expect_usage_error({"generate", "-m", m, "-p", "hi", "--nodes", "127.0.0.1:9", "--bootstrap", "127.0.0.1:9"});
    expect_usage_error({"generate", "-m", m, "-p", "hi", "--swarm", "--punch-ms", "-1"});
    expect_usage_error({"start", m, "--advertise", "nowhere"});
}

TEST(CliExitStatus, NoReachableNodeSaysWhatWasTriedAndWhy) {
    const std::string m = random_llama_model();
    // Port 1 on loopback refuses; a relayed address through it cannot even reach the relay.
    const std::string relayed = std::string(64, 'b') + "@127.0.0.1:1";
    expect_runtime_error({"generate", "-m", m, "-p", "hi", "-n", "2", "--nodes", "127.0.0.1:1," + relayed},
                         {"no route covers layers 0:", "2 nodes found, none reachable: ", "127.0.0.1:1 refused", relayed + " refused"});
}

TEST(CliExitStatus, HelpExitsZeroWithUsageOnStdout) {
    for (const char* cmd : {"generate", "info", "tokenize", "logits", "perplexity"}) {
        const ProcessResult p = llm_node({cmd, "--help"});
        EXPECT_EQ(p.exit_code, 0) << cmd << ": " << p.describe();
        EXPECT_NE(p.out.find("usage"), std::string::npos) << cmd << ": " << p.out;
    }
    const ProcessResult top = llm_node({"--help"});
    EXPECT_EQ(top.exit_code, 0) << top.describe();
}

TEST(CliExitStatus, MissingModelFileExitsOneNamingTheFile) {
    const std::string missing = temp_path("no-such-model.gguf");
    std::filesystem::remove(missing);
    expect_runtime_error({"generate", "-m", missing, "-p", "hi", "-n", "4"}, {missing});
    expect_runtime_error({"info", missing}, {missing});
    expect_runtime_error({"tokenize", "-m", missing, "-p", "hi"}, {missing});
    expect_runtime_error({"logits", "-m", missing, "--ids", "1,2"}, {missing});
}

TEST(CliExitStatus, MissingPromptFileExitsOneNamingTheFile) {
    const std::string missing = temp_path("no-such-prompt.txt");
    std::filesystem::remove(missing);
    expect_runtime_error({"generate", "-m", random_llama_model(), "-f", missing, "-n", "4"}, {missing});
    expect_runtime_error({"perplexity", "-m", random_llama_model(), "-f", missing}, {missing});
}

TEST(CliExitStatus, TruncatedGgufExitsOneNamingTheFile) {
    const std::string whole = read_file(random_llama_model());
    ASSERT_GT(whole.size(), 4096u);
    // Inside the fixed header (6, 30: the first key), inside the vocab metadata
    // (600, 3000), and inside the tensor data (the last two).
    for (size_t cut : {size_t(6), size_t(30), size_t(600), size_t(3000), whole.size() / 2, whole.size() - 4096}) {
        const std::string path = temp_path("truncated-" + std::to_string(cut) + ".gguf");
        write_bytes(path, whole.substr(0, cut));
        SCOPED_TRACE("truncated to " + std::to_string(cut) + " of " + std::to_string(whole.size()) + " bytes");
        expect_runtime_error({"generate", "-m", path, "-p", "hi", "-n", "4"}, {path});
        expect_runtime_error({"info", path, "--json"}, {path});
    }
}

TEST(CliExitStatus, CorruptGgufExitsOneNamingTheFile) {
    std::string bytes = read_file(random_llama_model());
    {
        std::string bad = bytes;
        bad[3] = 'X';  // magic "GGUF" -> "GGUX"
        const std::string path = temp_path("bad-magic.gguf");
        write_bytes(path, bad);
        expect_runtime_error({"generate", "-m", path, "-p", "hi", "-n", "4"}, {path});
        expect_runtime_error({"tokenize", "-m", path, "-p", "hi"}, {path});
    }
    {
        std::string bad = bytes;
        for (int i = 8; i < 16; ++i) bad[i] = char(0xFF);  // tensor count 2^64 - 1
        const std::string path = temp_path("bad-tensor-count.gguf");
        write_bytes(path, bad);
        expect_runtime_error({"info", path}, {path});
    }
    {
        const std::string path = temp_path("not-a-gguf.gguf");
        write_bytes(path, "this is a text file, not a model\n");
        expect_runtime_error({"generate", "-m", path, "-p", "hi"}, {path});
    }
}

// A well-formed GGUF (with a vocab and a tensor) whose architecture we do not run.
std::string write_mamba_model() {
    model::GgufWriter w;
    w.set_string("general.architecture", "mamba");
    w.set_string("general.name", "not-supported");
    w.set_u32("mamba.block_count", 1);
    w.set_u32("mamba.embedding_length", 8);
    w.set_u32("mamba.context_length", 64);
    w.set_u32("mamba.ssm.conv_kernel", 4);
    w.set_u32("mamba.ssm.inner_size", 16);
    w.set_u32("mamba.ssm.state_size", 4);
    w.set_u32("mamba.ssm.time_step_rank", 1);
    w.set_f32("mamba.attention.layer_norm_rms_epsilon", 1e-5f);
    const int64_t V = add_spm_vocab(w, 259);
    w.add_tensor("token_embd.weight", tensor::DType::f32, {8, V}, std::vector<uint8_t>(size_t(8 * V * 4), 0));
    const std::string path = temp_path("mamba.gguf");
    w.write(path);
    return path;
}

TEST(CliExitStatus, UnsupportedArchitectureExitsOneNamingFileAndArchitecture) {
    const std::string path = write_mamba_model();
    expect_runtime_error({"generate", "-m", path, "-p", "hi", "-n", "4"}, {path, "mamba"});
    expect_runtime_error({"info", path, "--json"}, {path, "mamba"});
    expect_runtime_error({"logits", "-m", path, "--ids", "1,2"}, {path, "mamba"});
}

TEST(CliExitStatus, TokenizeReadsOnlyTheVocabOfAnUnsupportedArchitecture) {
    // tokenize reads the tokenizer alone ("only its tokenizer is read"), so the
    // unsupported architecture does not stop it.
    const ProcessResult p = llm_node({"tokenize", "-m", write_mamba_model(), "-p", "hi", "--json"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    const auto ids = nlohmann::json::parse(split_lines(p.out).back()).get<std::vector<int32_t>>();
    EXPECT_EQ(ids, (std::vector<int32_t>{1, 3 + 0xE2, 3 + 0x96, 3 + 0x81, 3 + 'h', 3 + 'i'}));
}

TEST(CliExitStatus, PromptLongerThanTheContextExitsOne) {
    std::string prompt;
    for (int i = 0; i < 64; ++i) prompt += "abcd ";
    expect_runtime_error({"generate", "-m", random_llama_model(), "-p", prompt, "-c", "16", "-n", "4"}, {"context"});
}

TEST(CliExitStatus, TextShorterThanOneChunkExitsOneNamingTheFile) {
    const std::string text = temp_path("short.txt");
    write_bytes(text, "too short");
    expect_runtime_error({"perplexity", "-m", random_llama_model(), "-f", text, "-c", "128"}, {text});
}

}  // namespace
}  // namespace llmn::testing
