// Model discovery: the GGUF files already on this machine, in our own folders
// and in the caches of Hugging Face, LM Studio and Ollama, so that a model can be
// named by tag ("llama3.2:1b", "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF") instead
// of by path, and `llm-node start` can pick one with no argument at all.
//
// Only GGUF headers are read (metadata and tensor index, through GgufFile's
// mapping): listing a store of many gigabytes touches no tensor data. Anything
// that is not a usable model (not GGUF, vocab-only, a vision projector, a split
// shard, a malformed Ollama manifest, a manifest whose blob is missing) is left
// out of the listing, with a note in `skipped` when the caller asks for one.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmn::model {

// One folder to search and the source its models are reported under:
// "env", "local", "cache", "huggingface", "lmstudio" or "ollama".
struct SearchDir {
    std::string path;
    std::string source;
};

struct FoundModel {
    std::string name;                  // what `llm-node models` shows and -m accepts (see find_models)
    std::string family;                // "Llama", "Qwen2", ... (the architecture name when unsupported)
    std::string architecture;          // general.architecture
    bool supported = false;            // the engine can run it (model::read_model_config accepts it)
    uint64_t n_params = 0;
    std::string quantization;          // "Q4_K_M", "F16", ...
    int64_t context_length = 0;        // trained context
    std::string file;                  // path to open (an HF snapshot symlink, an Ollama blob, ...)
    std::string source;                // SearchDir::source of the folder it was found in
    std::vector<std::string> aliases;  // other names -m accepts
    uint64_t size_bytes = 0;           // size of the file
};

// The folders searched, in priority order, each once (missing ones included, so
// that error messages can say where a model would be looked for):
//   env          $LLM_NODE_MODELS (a colon-separated list)
//   local        ./models
//   cache        $HOME/.cache/llm-node/models
//   huggingface  $HF_HUB_CACHE, else $HF_HOME/hub, else $HOME/.cache/huggingface/hub
//   lmstudio     $HOME/.lmstudio/models, $HOME/.cache/lm-studio/models
//   ollama       $OLLAMA_MODELS, else $HOME/.ollama/models; /usr/share/ollama/.ollama/models
std::vector<SearchDir> model_search_roots();
// Just the paths of model_search_roots().
std::vector<std::string> model_search_dirs();

// Scans `roots`. Each folder is read by its layout, whatever its source:
//   Ollama (it has manifests/): manifests/<registry>/<namespace>/<model>/<tag>
//     name "<model>:<tag>" for registry.ollama.ai/library, "<namespace>/<model>:<tag>"
//     for another namespace there, "<registry>/<namespace>/<model>:<tag>" elsewhere;
//     aliases: the name without ":latest", the full "<registry>/<namespace>/<model>:<tag>".
//   Hugging Face hub (it has models--ORG--NAME/): snapshots/<rev>/**.gguf
//     name "ORG/NAME"; aliases "ORG/NAME:<QUANT>" and the file stem.
//   LM Studio (source lmstudio): <publisher>/<repo>/<file>.gguf, named like Hugging Face.
//   Any other folder: *.gguf up to 6 levels down; name the file stem, alias the
//     relative path without ".gguf" when it is in a subfolder.
// A file reached twice (symlinks, overlapping folders) is listed once, under its
// first root, with the aliases of both. The result is sorted by root, then name,
// then file. `skipped`, when given, receives one line per file left out and why.
std::vector<FoundModel> find_models(const std::vector<SearchDir>& roots, std::vector<std::string>* skipped = nullptr);
std::vector<FoundModel> find_models();

// The path of the model `spec` names. An existing file is returned as it is.
// Otherwise the found models are matched, in tiers, stopping at the first tier
// with a match: (1) the exact name, (2) an exact alias, (3) a name or alias equal
// to `spec` or `spec:latest` ignoring ASCII case. Several different files in one
// tier throw std::runtime_error listing them; no match throws std::runtime_error
// naming `spec` and the folders searched.
std::string resolve_model(const std::string& spec, const std::vector<SearchDir>& roots);
std::string resolve_model(const std::string& spec);

// The model to serve when none is named: the bundled stories260K.gguf if a
// "local" folder (./models) holds it, so a fresh checkout behaves the same on any
// machine; else the first supported model of find_models() (the earliest root,
// then by name); nullopt when there is none.
std::optional<FoundModel> default_model(const std::vector<FoundModel>& models);
std::optional<FoundModel> default_model();

}  // namespace llmn::model
