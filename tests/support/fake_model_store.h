// A fake machine full of models for the model discovery tests: an Ollama store,
// a Hugging Face hub cache, an LM Studio folder and a plain folder under one temp
// HOME, holding small random models of several architectures plus the debris a
// real machine has (a malformed manifest, a missing blob, a vocab-only file, a
// file that is not GGUF, a split shard). Header-only: only *_test.cpp are globbed.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/gguf_writer.h"
#include "support/random_model.h"

namespace llmn::testing {

// Sets environment variables for one scope and restores the old values after.
class ScopedEnv {
public:
    ScopedEnv() = default;
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    ~ScopedEnv() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else ::unsetenv(it->first.c_str());
        }
    }
    // `value` nullopt unsets the variable.
    void set(const std::string& key, std::optional<std::string> value) {
        const char* old = std::getenv(key.c_str());
        saved_.emplace_back(key, old ? std::optional<std::string>(old) : std::nullopt);
        if (value) ::setenv(key.c_str(), value->c_str(), 1);
        else ::unsetenv(key.c_str());
    }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

struct FakeModelStore {
    std::string base;      // everything lives below this folder
    std::string home;      // $HOME
    std::string plain;     // $LLM_NODE_MODELS
    std::string ollama;    // $HOME/.ollama/models
    std::string hf;        // $HOME/.cache/huggingface/hub
    std::string lmstudio;  // $HOME/.lmstudio/models

    // Points HOME and LLM_NODE_MODELS here and clears the variables that would
    // move the Hugging Face or Ollama folders elsewhere.
    void apply(ScopedEnv& env) const {
        env.set("HOME", home);
        env.set("LLM_NODE_MODELS", plain);
        for (const char* k : {"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "OLLAMA_MODELS"}) env.set(k, std::nullopt);
    }
};

namespace fake_store_detail {

inline void write_text(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

// A 2-layer random model of `arch` at `p`.
inline void write_model(const std::filesystem::path& p, const std::string& arch, uint64_t seed,
                        tensor::DType type = tensor::DType::f32) {
    std::filesystem::create_directories(p.parent_path());
    RandomModelSpec s;
    s.arch = arch;
    s.n_layer = 2;
    s.weight_type = type;
    s.seed = seed;
    write_random_model(s, p.string());
}

// An Ollama manifest whose layers are `layers` ({mediaType, digest} pairs).
inline std::string manifest(const std::vector<std::pair<std::string, std::string>>& layers) {
    // Built with += only: g++ 12 warns (-Wrestrict, wrongly) on chains of string +.
    std::string s = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)";
    s += R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:)";
    s += std::string(64, 'c');
    s += R"(","size":485},"layers":[)";
    for (size_t i = 0; i < layers.size(); ++i) {
        s += i ? "," : "";
        s += R"({"mediaType":")";
        s += layers[i].first;
        s += R"(","digest":")";
        s += layers[i].second;
        s += R"(","size":1000})";
    }
    s += "]}";
    return s;
}

}  // namespace fake_store_detail

// Builds the store under `base` (which is emptied first):
//   ollama     llama3.2:1b (llama), qwen2.5:latest (qwen2), jdoe/tiny:q8 (llama Q8_0); broken/latest
//              (not JSON), gone/latest (blob missing), nolayer/latest (no model layer)
//   hf         TheOrg/Tiny-GGUF: tiny.Q8_0.gguf (qwen2 Q8_0, in two revisions) and tiny.F32.gguf (qwen2)
//   lmstudio   pub/Phi-GGUF/phi-mini.gguf (phi3)
//   plain      mini.gguf (llama), sub/deep.gguf (qwen3), linked.gguf -> the LM Studio file;
//              garbage.gguf, vocab.gguf (no tensors), big-00001-of-00002.gguf (a shard)
inline FakeModelStore make_fake_model_store(const std::string& base) {
    namespace fs = std::filesystem;
    using namespace fake_store_detail;
    fs::remove_all(base);
    FakeModelStore st;
    st.base = base;
    st.home = base + "/home";
    st.plain = base + "/plain";
    st.ollama = st.home + "/.ollama/models";
    st.hf = st.home + "/.cache/huggingface/hub";
    st.lmstudio = st.home + "/.lmstudio/models";

    const std::string model_layer = "application/vnd.ollama.image.model";
    const fs::path lib = fs::path(st.ollama) / "manifests/registry.ollama.ai/library";
    auto blob = [&](char c) { return std::pair{"sha256:" + std::string(64, c), st.ollama + "/blobs/sha256-" + std::string(64, c)}; };
    auto add_ollama = [&](const fs::path& manifest_path, char c, const std::string& arch, uint64_t seed,
                          tensor::DType type = tensor::DType::f32) {
        auto [digest, file] = blob(c);
        write_model(file, arch, seed, type);
        write_text(manifest_path, manifest({{"application/vnd.ollama.image.template", "sha256:" + std::string(64, 'e')},
                                            {model_layer, digest}}));
    };
    add_ollama(lib / "llama3.2/1b", '1', "llama", 11);
    add_ollama(lib / "qwen2.5/latest", '2', "qwen2", 12);
    add_ollama(fs::path(st.ollama) / "manifests/registry.ollama.ai/jdoe/tiny/q8", '3', "llama", 13, tensor::DType::q8_0);
    write_text(lib / "broken/latest", "{\"schemaVersion\":2,\"layers\":[");
    write_text(lib / "gone/latest", manifest({{model_layer, blob('9').first}}));
    write_text(lib / "nolayer/latest", manifest({{"application/vnd.ollama.image.license", blob('1').first}}));

    const fs::path repo = fs::path(st.hf) / "models--TheOrg--Tiny-GGUF";
    write_model(repo / "blobs/aaaa", "qwen2", 21, tensor::DType::q8_0);
    write_model(repo / "blobs/bbbb", "qwen2", 22);
    for (const char* rev : {"rev0", "rev1"}) {
        fs::create_directories(repo / "snapshots" / rev);
        fs::create_symlink("../../blobs/aaaa", repo / "snapshots" / rev / "tiny.Q8_0.gguf");
    }
    fs::create_symlink("../../blobs/bbbb", repo / "snapshots/rev1/tiny.F32.gguf");
    write_text(repo / "refs/main", "rev1");

    const fs::path phi = fs::path(st.lmstudio) / "pub/Phi-GGUF/phi-mini.gguf";
    write_model(phi, "phi3", 31);

    write_model(fs::path(st.plain) / "mini.gguf", "llama", 41);
    write_model(fs::path(st.plain) / "sub/deep.gguf", "qwen3", 42);
    fs::create_symlink(phi, fs::path(st.plain) / "linked.gguf");
    write_text(fs::path(st.plain) / "garbage.gguf", "this is not a GGUF file");
    write_text(fs::path(st.plain) / "big-00001-of-00002.gguf", "a shard");
    model::GgufWriter vocab;
    vocab.set_string("general.architecture", "llama");
    add_spm_vocab(vocab, 300);
    vocab.write(st.plain + "/vocab.gguf");
    return st;
}

}  // namespace llmn::testing
