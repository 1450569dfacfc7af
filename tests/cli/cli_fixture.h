// Shared pieces of the CLI convention tests: random-weight model files written
// once per test executable, the bundled stories260K path, and shortcuts to run
// llm-node and read its JSON lines. Header-only (only *_test.cpp are globbed).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/run_process.h"
#include "support/random_model.h"
#include "support/test_support.h"

namespace llmn::testing {

constexpr double kCliTimeout = 120;  // seconds for one llm-node run on a tiny model

// A random llama model (f32, default RandomModelSpec) written on first use.
inline const std::string& random_llama_model() {
    static const std::string path = write_random_model(RandomModelSpec{}, temp_path("cli-random-llama-f32.gguf"));
    return path;
}

// A random qwen2 model with Q8_0 weights and tied embeddings.
inline RandomModelSpec q8_spec() {
    RandomModelSpec s;
    s.arch = "qwen2";
    s.weight_type = tensor::DType::q8_0;
    s.n_layer = 2;
    s.tied = true;
    s.seed = 7;
    return s;
}
inline const std::string& random_qwen2_q8_model() {
    static const std::string path = write_random_model(q8_spec(), temp_path("cli-random-qwen2-q8_0.gguf"));
    return path;
}

// models/stories260K.gguf in the source tree (this file is tests/cli/cli_fixture.h).
inline std::string bundled_model() {
    return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "models" / "stories260K.gguf").string();
}

// llm-node with these arguments.
inline ProcessResult llm_node(std::vector<std::string> args, double timeout_s = kCliTimeout) {
    args.insert(args.begin(), llm_node_binary());
    return run_process(args, timeout_s);
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

// One JSON value per stdout line; a line that does not parse is a test failure.
inline std::vector<nlohmann::json> json_lines(const ProcessResult& p) {
    std::vector<nlohmann::json> out;
    for (const std::string& line : split_lines(p.out)) {
        try {
            out.push_back(nlohmann::json::parse(line));
        } catch (const std::exception& e) {
            ADD_FAILURE() << "stdout line is not JSON: '" << line.substr(0, 160) << "' (" << e.what() << ")";
        }
    }
    return out;
}

// The token ids of `generate --json` output (objects with an "id").
inline std::vector<int32_t> generated_ids(const ProcessResult& p) {
    std::vector<int32_t> ids;
    for (const auto& o : json_lines(p))
        if (o.is_object() && o.contains("id")) ids.push_back(o["id"].get<int32_t>());
    return ids;
}

}  // namespace llmn::testing
