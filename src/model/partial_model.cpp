#include "model/partial_model.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "model/gguf_reader.h"

namespace llmn::model {
namespace {

namespace fs = std::filesystem;

constexpr uintmax_t kMaxSidecar = uintmax_t(256) << 20;

std::string read_whole(const std::string& path) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) throw GgufError("cannot read " + path + ": " + ec.message());
    if (size > kMaxSidecar) throw GgufError(path + " is too large (" + std::to_string(size) + " bytes)");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    if (!in && !in.eof()) throw GgufError("cannot read " + path);
    return s.str();
}

void write_atomically(const std::string& path, const std::string& bytes) {
    static std::atomic<unsigned> counter{0};
    const std::string tmp = path + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), std::streamsize(bytes.size()));
        out.flush();
        if (!out) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw GgufError("cannot write " + tmp);
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw GgufError("cannot write " + path + ": " + ec.message());
    }
}

std::set<std::string> read_verified(const std::string& gguf_path) {
    std::set<std::string> out;
    const std::string path = partial_verified_path(gguf_path);
    if (!fs::exists(path)) return out;
    std::istringstream in(read_whole(path));
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.insert(line);
    return out;
}

// -1 for a tensor outside the blocks.
int block_of(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    char* end = nullptr;
    const long il = std::strtol(name.c_str() + 4, &end, 10);
    return end && *end == '.' && il >= 0 ? int(il) : -1;
}

bool is_stage_tensor(const std::string& name) {
    return name == "token_embd.weight" || name == "output_norm.weight" || name == "output.weight";
}

}  // namespace

std::string partial_manifest_path(const std::string& gguf_path) { return gguf_path + ".llmn-manifest"; }
std::string partial_verified_path(const std::string& gguf_path) { return gguf_path + ".llmn-verified"; }

bool is_partial(const std::string& gguf_path) {
    std::error_code ec;
    return !gguf_path.empty() && fs::exists(partial_manifest_path(gguf_path), ec);
}

std::optional<PartialState> read_partial(const std::string& gguf_path) {
    if (!is_partial(gguf_path)) return std::nullopt;
    PartialState s;
    try {
        s.manifest = parse_manifest(read_whole(partial_manifest_path(gguf_path)));
    } catch (const GgufError& e) {
        throw GgufError(partial_manifest_path(gguf_path) + ": " + e.what());
    }
    s.verified = read_verified(gguf_path);
    return s;
}

void write_partial_manifest(const std::string& gguf_path, const WeightsManifest& m) {
    const std::string bytes = serialize_manifest(m);
    const std::string path = partial_manifest_path(gguf_path);
    std::error_code ec;
    if (fs::exists(path, ec)) {
        if (read_whole(path) == bytes) return;
        fs::remove(partial_verified_path(gguf_path), ec);  // another model: nothing verified holds
    }
    write_atomically(path, bytes);
}

std::vector<std::string> verify_tensors(const GgufFile& file, const WeightsManifest& m,
                                        const std::vector<std::string>& names) {
    std::map<std::string, const Digest32*> want;
    for (const auto& t : m.digests.tensors) want[t.name] = &t.digest;
    std::vector<std::string> bad;
    std::set<std::string> good;
    for (const auto& name : names) {
        const TensorInfo* info = file.tensor(name);
        const auto it = want.find(name);
        if (!info || it == want.end() || info->offset + info->nbytes > file.file_size() ||
            digest_bytes(info->data, size_t(info->nbytes)) != *it->second)
            bad.push_back(name);
        else
            good.insert(name);
    }
    if (!good.empty()) {
        std::set<std::string> all = read_verified(file.path());
        const size_t before = all.size();
        all.insert(good.begin(), good.end());
        if (all.size() != before) {
            std::string text;
            for (const auto& n : all) text += n + "\n";
            write_atomically(partial_verified_path(file.path()), text);
        }
    }
    return bad;
}

std::vector<std::string> tensors_needed(const GgufFile& file, int a, int b, bool with_stages) {
    std::vector<std::string> out;
    for (const auto& t : file.tensors()) {
        const int il = block_of(t.name);
        if (il >= 0 ? (il >= a && il < b) : (with_stages || !is_stage_tensor(t.name))) out.push_back(t.name);
    }
    return out;
}

void require_verified(const GgufFile& file, const std::vector<std::string>& names) {
    if (!is_partial(file.path())) return;
    const std::set<std::string> verified = read_verified(file.path());
    for (const auto& n : names)
        if (!verified.count(n) && file.tensor(n))
            throw GgufError(file.path() + ": tensor '" + n +
                            "' has not been fetched and verified yet (a file fetched in part from the swarm)");
}

std::shared_ptr<const TensorDigests> partial_digests(const GgufFile& file) {
    const auto state = read_partial(file.path());
    if (!state) return nullptr;
    const WeightsManifest& m = state->manifest;
    const std::string_view head = file.header_bytes();
    if (m.file_size != file.file_size() || m.header_size != head.size() ||
        digest_bytes(head.data(), head.size()) != m.digests.header)
        throw GgufError(file.path() + ": the file's header is not the one its manifest (" +
                        partial_manifest_path(file.path()) + ") describes");
    if (m.digests.tensors.size() != file.tensors().size())
        throw GgufError(file.path() + ": its manifest lists " + std::to_string(m.digests.tensors.size()) +
                        " tensors, the file " + std::to_string(file.tensors().size()));
    for (size_t i = 0; i < file.tensors().size(); ++i)
        if (m.digests.tensors[i].name != file.tensors()[i].name)
            throw GgufError(file.path() + ": its manifest names tensor " + std::to_string(i) + " '" +
                            m.digests.tensors[i].name + "', the file '" + file.tensors()[i].name + "'");
    return std::make_shared<const TensorDigests>(m.digests);
}

}  // namespace llmn::model
