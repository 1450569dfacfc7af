// llm-node models: the GGUF models on this machine (our folders, Hugging Face,
// LM Studio, Ollama) and the names -m accepts for them.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/swarm_flags.h"
#include "cli/weights_cli.h"
#include "model/model_store.h"

namespace llmn::cli {
namespace {

// "1.10B", "135M", "4.2M", "260K": the sizes model cards use.
std::string params_label(uint64_t n) {
    char buf[32];
    if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    else if (n >= 10000000ull) std::snprintf(buf, sizeof buf, "%.0fM", n / 1e6);
    else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    else if (n >= 1000ull) std::snprintf(buf, sizeof buf, "%.0fK", n / 1e3);
    else std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
    return buf;
}

std::string family_label(const model::FoundModel& m) {
    return m.supported ? m.family : m.family + " (unsupported)";
}

void print_json(const model::FoundModel& m) {
    std::string aliases;
    for (const std::string& a : m.aliases) aliases += (aliases.empty() ? "" : ",") + json_string(a);
    std::printf(
        "{\"name\":%s,\"family\":%s,\"architecture\":%s,\"supported\":%s,\"n_params\":%llu,\"quantization\":%s,"
        "\"context_length\":%lld,\"file\":%s,\"source\":%s,\"aliases\":[%s],\"size_bytes\":%llu}\n",
        json_string(m.name).c_str(), json_string(m.family).c_str(), json_string(m.architecture).c_str(),
        m.supported ? "true" : "false", (unsigned long long)m.n_params, json_string(m.quantization).c_str(),
        (long long)m.context_length, json_string(m.file).c_str(), json_string(m.source).c_str(), aliases.c_str(),
        (unsigned long long)m.size_bytes);
}

void print_table(const std::vector<model::FoundModel>& models) {
    std::vector<std::vector<std::string>> rows = {{"NAME", "FAMILY", "PARAMS", "QUANT", "CONTEXT", "SOURCE", "FILE"}};
    for (const model::FoundModel& m : models)
        rows.push_back({m.name, family_label(m), params_label(m.n_params), m.quantization,
                        std::to_string(m.context_length), m.source, m.file});
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& row : rows)
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            // The last column is not padded, so lines carry no trailing blanks.
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        std::printf("%s\n", line.c_str());
    }
}

}  // namespace

int cmd_models(int argc, char** argv) {
    std::vector<Flag> flags = {{{"--json"}, false, "print one JSON object per model"},
                               {{"-v", "--verbose"}, false, "also list on stderr the files left out, and why"},
                               {{"--swarm"}, false, "list the models the swarm's nodes serve (name, size, quantization, nodes, coverage)"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : swarm_flags()) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf(
            "usage: llm-node models [--json] [-v] [--swarm]\n"
            "Lists the GGUF models found in $LLM_NODE_MODELS, ./models, ~/.cache/llm-node/models, the Hugging Face\n"
            "cache, LM Studio and Ollama; any NAME (or alias, with --json) can be given to -m.\n%s",
            args.help().c_str());
        return 0;
    }
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional().front() + "'");
    if (args.has("--swarm")) return list_swarm_models(args);
    const std::vector<model::SearchDir> roots = model::model_search_roots();
    std::vector<std::string> skipped;
    const std::vector<model::FoundModel> models = model::find_models(roots, &skipped);
    if (args.has("-v"))
        for (const std::string& s : skipped) std::fprintf(stderr, "skipped %s\n", s.c_str());
    if (models.empty()) {
        std::string dirs;
        for (const model::SearchDir& d : roots) dirs += (dirs.empty() ? "" : ", ") + d.path;
        std::fprintf(stderr, "llm-node models: no GGUF models found; looked in: %s\n", dirs.c_str());
        return 0;
    }
    if (args.has("--json")) {
        for (const model::FoundModel& m : models) print_json(m);
    } else {
        print_table(models);
    }
    return 0;
}

}  // namespace llmn::cli
