#include "model/model_store.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>

#include "model/gguf_reader.h"
#include "model/model_summary.h"

namespace fs = std::filesystem;

namespace llmn::model {
namespace {

// Bounds that keep a scan of a huge or looping tree (a home folder named in
// $LLM_NODE_MODELS, say) short.
constexpr int kMaxDepth = 6;                        // levels below a plain root
constexpr size_t kMaxEntries = 20000;               // directory entries visited per walk
constexpr uintmax_t kMaxManifestBytes = 1u << 20;   // Ollama manifests are ~1 KiB
constexpr const char* kOllamaModelLayer = "application/vnd.ollama.image.model";
constexpr const char* kOllamaRegistry = "registry.ollama.ai";

// A file to look at, before its header is read.
struct Candidate {
    std::string file;
    std::string name;
    std::vector<std::string> aliases;
    bool quant_alias = false;  // also alias "<name>:<QUANT>" once the quantization is known
    int rank = 0;              // of two paths to one file, the lower rank's is kept
};

std::string env(const char* key) {
    const char* v = std::getenv(key);
    return v ? v : "";
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

bool is_gguf_name(const fs::path& p) { return lower(p.extension().string()) == ".gguf"; }

// "model-00001-of-00003": one shard of a split GGUF, which GgufFile cannot load whole.
bool is_split_shard(const std::string& stem) {
    static const std::string shape = "-#####-of-#####";
    if (stem.size() < shape.size()) return false;
    const std::string tail = stem.substr(stem.size() - shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
        if (shape[i] == '#' ? !std::isdigit(static_cast<unsigned char>(tail[i])) : tail[i] != shape[i]) return false;
    return true;
}

void note(std::vector<std::string>* skipped, const fs::path& p, const std::string& why) {
    if (skipped) skipped->push_back(p.string() + ": " + why);
}

// Calls on_file(path, depth) for regular files (symlinks followed) under `dir`,
// `max_depth` levels down at most (depth 0 = directly in dir). Unreadable
// folders and races with deletion end that part of the walk quietly.
template <class F>
void walk(const fs::path& dir, int max_depth, F&& on_file) {
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    size_t visited = 0;
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (++visited > kMaxEntries) break;
        if (it.depth() + 1 >= max_depth) it.disable_recursion_pending();
        std::error_code fec;
        if (it->is_regular_file(fec)) on_file(it->path(), it.depth());
    }
}

// Adds the .gguf files of a tree, minus split shards (with a note).
template <class F>
void walk_gguf(const fs::path& dir, int max_depth, std::vector<std::string>* skipped, F&& on_gguf) {
    walk(dir, max_depth, [&](const fs::path& p, int depth) {
        if (!is_gguf_name(p)) return;
        if (is_split_shard(p.stem().string())) return note(skipped, p, "one shard of a split GGUF (not supported)");
        on_gguf(p, depth);
    });
}

// The hex sha256 of the model layer of an Ollama manifest, or "" with `why` set.
// Any malformed manifest is only a reason to skip it.
std::string ollama_model_digest(const fs::path& manifest, std::string& why) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(manifest, ec);
    if (ec || size > kMaxManifestBytes) {
        why = "manifest unreadable or over 1 MiB";
        return "";
    }
    std::ifstream in(manifest, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        why = "manifest is not a JSON object";
        return "";
    }
    const auto layers = j.find("layers");
    if (layers == j.end() || !layers->is_array()) {
        why = "manifest has no layers array";
        return "";
    }
    for (const nlohmann::json& layer : *layers) {
        if (!layer.is_object()) continue;
        const auto type = layer.find("mediaType"), digest = layer.find("digest");
        if (type == layer.end() || digest == layer.end() || !type->is_string() || !digest->is_string()) continue;
        if (type->get<std::string>() != kOllamaModelLayer) continue;
        const std::string d = digest->get<std::string>();
        // Only "sha256:<64 hex>": anything else could name a path outside blobs/.
        const bool hex = d.size() == 7 + 64 && d.rfind("sha256:", 0) == 0 &&
                         std::all_of(d.begin() + 7, d.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
        if (!hex) {
            why = "model layer digest '" + d.substr(0, 80) + "' is not sha256:<64 hex digits>";
            return "";
        }
        return d.substr(7);
    }
    why = "manifest has no model layer";
    return "";
}

// <root>/manifests/<registry>/<namespace>/<model>/<tag> -> <root>/blobs/sha256-<hex>.
void scan_ollama(const fs::path& root, std::vector<Candidate>& out, std::vector<std::string>* skipped) {
    const fs::path manifests = root / "manifests";
    walk(manifests, 4, [&](const fs::path& p, int depth) {
        if (depth != 3) return;
        const fs::path rel = p.lexically_relative(manifests);
        const std::vector<std::string> part(rel.begin(), rel.end());
        if (part.size() != 4) return;
        std::string why;
        const std::string digest = ollama_model_digest(p, why);
        if (digest.empty()) return note(skipped, p, why);
        const fs::path blob = root / "blobs" / ("sha256-" + digest);
        std::error_code ec;
        if (!fs::is_regular_file(blob, ec)) return note(skipped, p, "its model blob " + blob.string() + " is missing");

        const std::string& registry = part[0], & ns = part[1], & model = part[2], & tag = part[3];
        const std::string full = registry + "/" + ns + "/" + model;
        std::string base = full;
        if (registry == kOllamaRegistry) base = ns == "library" ? model : ns + "/" + model;
        Candidate c{blob.string(), base + ":" + tag, {}, false};
        if (tag == "latest") c.aliases.push_back(base);  // what `ollama run llama3.2` means
        c.aliases.push_back(full + ":" + tag);
        out.push_back(std::move(c));
    });
}

// <root>/models--ORG--NAME/snapshots/<rev>/**.gguf, usually symlinks into ../../blobs.
void scan_huggingface(const fs::path& root, std::vector<Candidate>& out, std::vector<std::string>* skipped) {
    std::error_code ec;
    size_t visited = 0;
    for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (++visited > kMaxEntries) break;
        const std::string dir = it->path().filename().string();
        if (dir.rfind("models--", 0) != 0) continue;
        // huggingface_hub writes "ORG/NAME" as "models--ORG--NAME".
        std::string repo;
        for (size_t i = 8; i < dir.size(); ++i) {
            if (dir.compare(i, 2, "--") == 0) repo += '/', ++i;
            else repo += dir[i];
        }
        // A file in several revisions is listed from the one refs/main names.
        std::string main_rev;
        std::ifstream(it->path() / "refs" / "main") >> main_rev;
        const fs::path snapshots = it->path() / "snapshots";
        walk_gguf(snapshots, kMaxDepth, skipped, [&](const fs::path& p, int depth) {
            if (depth < 1) return;  // files sit inside snapshots/<rev>/
            const bool current = *p.lexically_relative(snapshots).begin() == main_rev;
            out.push_back(Candidate{p.string(), repo, {p.stem().string()}, true, current ? 0 : 1});
        });
    }
}

// Any folder; LM Studio's <publisher>/<repo>/<file>.gguf is named like a Hugging Face repo.
void scan_plain(const fs::path& root, bool lmstudio, std::vector<Candidate>& out, std::vector<std::string>* skipped) {
    walk_gguf(root, kMaxDepth, skipped, [&](const fs::path& p, int depth) {
        const fs::path rel = p.lexically_relative(root);
        const std::string stem = p.stem().string();
        if (lmstudio && depth == 2) {
            const std::string repo = rel.parent_path().generic_string();
            out.push_back(Candidate{p.string(), repo, {stem}, true});
            return;
        }
        Candidate c{p.string(), stem, {}, false};
        if (depth > 0) c.aliases.push_back((rel.parent_path() / stem).generic_string());
        out.push_back(std::move(c));
    });
}

bool has_hf_repos(const fs::path& root) {
    std::error_code ec;
    size_t visited = 0;
    for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (++visited > kMaxEntries) break;
        if (it->path().filename().string().rfind("models--", 0) == 0) return true;
    }
    return false;
}

// The files of one root, read by the layout the folder has.
std::vector<Candidate> scan_root(const SearchDir& dir, std::vector<std::string>* skipped) {
    std::vector<Candidate> out;
    const fs::path root(dir.path);
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return out;
    if (fs::is_directory(root / "manifests", ec) && fs::is_directory(root / "blobs", ec)) scan_ollama(root, out, skipped);
    else if (has_hf_repos(root)) scan_huggingface(root, out, skipped);
    else scan_plain(root, dir.source == "lmstudio", out, skipped);
    // Directory order is arbitrary; sorting makes the path kept for a duplicate file stable.
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(a.rank, a.name, a.file) < std::tie(b.rank, b.name, b.file);
    });
    return out;
}

void add_alias(FoundModel& m, const std::string& alias) {
    if (alias.empty() || alias == m.name) return;
    if (std::find(m.aliases.begin(), m.aliases.end(), alias) == m.aliases.end()) m.aliases.push_back(alias);
}

// Reads the header of `c`'s file; nullopt (with a note) when it is not a model we list.
std::optional<FoundModel> read_candidate(const Candidate& c, const std::string& source, std::vector<std::string>* skipped) {
    ModelSummary s;
    try {
        const auto file = GgufFile::open(c.file);
        if (file->tensors().empty()) {
            note(skipped, c.file, "vocab-only GGUF (no tensors)");
            return std::nullopt;
        }
        s = summarize_model(*file);
    } catch (const std::exception& e) {
        note(skipped, c.file, std::string("not a usable GGUF file: ") + e.what());
        return std::nullopt;
    }
    // A vision projector or an encoder has no <arch>.block_count of its own.
    if (s.n_layer <= 0) {
        note(skipped, c.file, "not a language model (architecture " + s.arch + ")");
        return std::nullopt;
    }
    FoundModel m;
    m.name = c.name;
    m.family = s.family;
    m.architecture = s.arch;
    m.supported = s.supported;
    m.n_params = s.n_params;
    m.quantization = s.quantization;
    m.context_length = s.context_length;
    m.file = fs::path(c.file).lexically_normal().string();
    m.source = source;
    std::error_code ec;
    m.size_bytes = fs::file_size(c.file, ec);
    if (ec) m.size_bytes = 0;
    for (const std::string& a : c.aliases) add_alias(m, a);
    if (c.quant_alias && !s.quantization.empty()) add_alias(m, c.name + ":" + s.quantization);
    return m;
}

// Where a file really is, so that one blob reached by several paths counts once.
std::string file_key(const std::string& path) {
    std::error_code ec;
    const fs::path p = fs::canonical(path, ec);
    return ec ? fs::path(path).lexically_normal().string() : p.string();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

}  // namespace

std::vector<SearchDir> model_search_roots() {
    std::vector<SearchDir> out;
    std::set<std::string> seen;
    auto add = [&](const std::string& path, const char* source) {
        if (path.empty()) return;
        std::error_code ec;
        fs::path key = fs::weakly_canonical(path, ec);
        if (ec) key = fs::path(path).lexically_normal();
        if (!key.has_filename()) key = key.parent_path();  // "dir/" and "dir" are one folder
        if (seen.insert(key.string()).second) out.push_back({path, source});
    };
    const std::string list = env("LLM_NODE_MODELS");
    for (size_t start = 0; start <= list.size();) {
        const size_t colon = std::min(list.find(':', start), list.size());
        add(list.substr(start, colon - start), "env");
        start = colon + 1;
    }
    add("./models", "local");
    const std::string home = env("HOME");
    if (!home.empty()) add(home + "/.cache/llm-node/models", "cache");
    // huggingface_hub's own precedence: HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, ~/.cache.
    if (!env("HF_HUB_CACHE").empty()) add(env("HF_HUB_CACHE"), "huggingface");
    else if (!env("HF_HOME").empty()) add(env("HF_HOME") + "/hub", "huggingface");
    else if (!env("XDG_CACHE_HOME").empty()) add(env("XDG_CACHE_HOME") + "/huggingface/hub", "huggingface");
    else if (!home.empty()) add(home + "/.cache/huggingface/hub", "huggingface");
    if (!home.empty()) {
        add(home + "/.lmstudio/models", "lmstudio");
        add(home + "/.cache/lm-studio/models", "lmstudio");
    }
    if (!env("OLLAMA_MODELS").empty()) add(env("OLLAMA_MODELS"), "ollama");
    else if (!home.empty()) add(home + "/.ollama/models", "ollama");
    add("/usr/share/ollama/.ollama/models", "ollama");  // the Linux installer's service user
    return out;
}

std::vector<std::string> model_search_dirs() {
    std::vector<std::string> out;
    for (const SearchDir& d : model_search_roots()) out.push_back(d.path);
    return out;
}

std::vector<FoundModel> find_models(const std::vector<SearchDir>& roots, std::vector<std::string>* skipped) {
    struct Entry {
        size_t root;
        FoundModel model;
    };
    std::vector<Entry> found;
    std::map<std::string, size_t> by_file;  // file_key -> index in found
    for (size_t r = 0; r < roots.size(); ++r) {
        for (const Candidate& c : scan_root(roots[r], skipped)) {
            const std::string key = file_key(c.file);
            if (auto it = by_file.find(key); it != by_file.end()) {
                FoundModel& first = found[it->second].model;
                add_alias(first, c.name);
                for (const std::string& a : c.aliases) add_alias(first, a);
                if (c.quant_alias && !first.quantization.empty()) add_alias(first, c.name + ":" + first.quantization);
                continue;
            }
            std::optional<FoundModel> m = read_candidate(c, roots[r].source, skipped);
            if (!m) continue;
            by_file.emplace(key, found.size());
            found.push_back({r, std::move(*m)});
        }
    }
    std::stable_sort(found.begin(), found.end(), [](const Entry& a, const Entry& b) {
        if (a.root != b.root) return a.root < b.root;
        if (a.model.name != b.model.name) return a.model.name < b.model.name;
        return a.model.file < b.model.file;
    });
    std::vector<FoundModel> out;
    for (Entry& e : found) out.push_back(std::move(e.model));
    return out;
}

std::vector<FoundModel> find_models() { return find_models(model_search_roots()); }

std::string resolve_model(const std::string& spec, const std::vector<SearchDir>& roots) {
    std::error_code ec;
    if (!spec.empty() && fs::is_regular_file(spec, ec)) return spec;
    const std::vector<FoundModel> models = spec.empty() ? std::vector<FoundModel>{} : find_models(roots);
    const std::string want = lower(spec), want_latest = want + ":latest";
    auto matches = [&](const FoundModel& m, int tier) {
        if (tier == 0) return m.name == spec;
        if (tier == 1) return std::find(m.aliases.begin(), m.aliases.end(), spec) != m.aliases.end();
        auto same = [&](const std::string& n) { const std::string l = lower(n); return l == want || l == want_latest; };
        return same(m.name) || std::any_of(m.aliases.begin(), m.aliases.end(), same);
    };
    for (int tier = 0; tier < 3; ++tier) {
        std::vector<const FoundModel*> hits;
        for (const FoundModel& m : models)
            if (matches(m, tier)) hits.push_back(&m);
        if (hits.size() == 1) return hits.front()->file;
        if (hits.size() > 1) {
            std::vector<std::string> list;
            for (const FoundModel* m : hits)
                list.push_back(m->name + " [" + m->quantization + ", " + m->source + "] " + m->file);
            throw std::runtime_error("model name '" + spec + "' is ambiguous; it matches " + join(list, "; ") +
                                     " (name one by a longer alias or give its file path)");
        }
    }
    std::vector<std::string> dirs;
    for (const SearchDir& d : roots) dirs.push_back(d.path);
    const bool path_like = is_gguf_name(spec) || spec.rfind('/', 0) == 0 || spec.rfind("./", 0) == 0;
    throw std::runtime_error((path_like ? spec + ": no such file, and no model named '" + spec + "' found"
                                        : "no model named '" + spec + "' found") +
                             "; looked in: " + join(dirs, ", ") + "; run 'llm-node models'");
}

std::string resolve_model(const std::string& spec) { return resolve_model(spec, model_search_roots()); }

std::optional<FoundModel> default_model(const std::vector<FoundModel>& models) {
    for (const FoundModel& m : models)
        if (m.source == "local" && fs::path(m.file).filename() == "stories260K.gguf") return m;
    for (const FoundModel& m : models)
        if (m.supported) return m;
    return std::nullopt;
}

std::optional<FoundModel> default_model() { return default_model(find_models()); }

}  // namespace llmn::model
