// See weights_files.h; also the small value helpers of weights.h.
#include "swarm/weights_files.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "swarm/weights.h"

namespace llmn::swarm {
namespace fs = std::filesystem;

std::string read_file(const std::string& path, uint64_t limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FetchError("cannot read " + path);
    std::string s;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        s.append(buf, size_t(in.gcount()));
        if (s.size() > limit) throw FetchError(path + " is larger than " + std::to_string(limit) + " bytes");
    }
    return s;
}

std::string read_prefix(const std::string& path, uint64_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    if (!in.read(s.data(), std::streamsize(n))) throw FetchError("cannot read the first " + std::to_string(n) + " bytes of " + path);
    return s;
}

void write_file(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), std::streamsize(bytes.size()));
        if (!out) throw FetchError("cannot write " + tmp);
    }
    fs::rename(tmp, path);
}

std::vector<uint8_t> TorrentId::bytes() const {
    std::vector<uint8_t> b(v1.begin(), v1.end());
    b.insert(b.end(), v2.begin(), v2.end());
    return b;
}

std::optional<TorrentId> TorrentId::from_bytes(const std::vector<uint8_t>& b) {
    if (b.size() != 52) return std::nullopt;
    TorrentId t;
    std::memcpy(t.v1.data(), b.data(), 20);
    std::memcpy(t.v2.data(), b.data() + 20, 32);
    return t;
}

std::string TorrentId::hex() const { return net::to_hex(v2.data(), v2.size()); }

uint32_t weights_piece_size(uint64_t file_size) {
    uint32_t p = 16u << 10;
    while (p < (4u << 20) && uint64_t(p) * 4096 < file_size) p <<= 1;
    return p;
}

std::string default_weights_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/llm-node/weights";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/llm-node/weights";
    return "";
}

}  // namespace llmn::swarm

