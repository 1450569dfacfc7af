#include "model/weights_manifest.h"

#include <cstring>

#include "model/gguf_reader.h"

namespace llmn::model {
namespace {

constexpr char kMagic[] = "llm-node manifest 1\n";
constexpr size_t kMagicLen = sizeof(kMagic) - 1;

void put_u64(std::string& s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 0xff);
}
void put_u32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 0xff);
}

class Reader {
public:
    explicit Reader(const std::string& b) : b_(b) {}
    void need(size_t n, const char* what) const {
        if (b_.size() - pos_ < n)
            throw GgufError("manifest: truncated at byte " + std::to_string(pos_) + " while reading " + what);
    }
    uint64_t u(int bytes, const char* what) {
        need(size_t(bytes), what);
        uint64_t v = 0;
        for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(b_[pos_ + size_t(i)])) << (8 * i);
        pos_ += size_t(bytes);
        return v;
    }
    void bytes(void* out, size_t n, const char* what) {
        need(n, what);
        std::memcpy(out, b_.data() + pos_, n);
        pos_ += n;
    }
    std::string str(size_t n, const char* what) {
        need(n, what);
        std::string s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    size_t pos() const { return pos_; }
    size_t left() const { return b_.size() - pos_; }

private:
    const std::string& b_;
    size_t pos_ = 0;
};

}  // namespace

WeightsManifest make_manifest(const GgufFile& file) {
    WeightsManifest m;
    m.file_size = file.file_size();
    m.header_size = file.header_bytes().size();
    m.digests = *tensor_digests(file);
    return m;
}

std::string serialize_manifest(const WeightsManifest& m) {
    std::string s(kMagic, kMagicLen);
    put_u64(s, m.file_size);
    put_u64(s, m.header_size);
    s.append(reinterpret_cast<const char*>(m.digests.header.data()), 32);
    put_u32(s, uint32_t(m.digests.tensors.size()));
    for (const auto& t : m.digests.tensors) {
        put_u32(s, uint32_t(t.name.size()));
        s += t.name;
        s.append(reinterpret_cast<const char*>(t.digest.data()), 32);
    }
    return s;
}

WeightsManifest parse_manifest(const std::string& bytes) {
    if (bytes.size() < kMagicLen || bytes.compare(0, kMagicLen, kMagic) != 0)
        throw GgufError("manifest: not an llm-node manifest (bad magic)");
    Reader r(bytes);
    (void)r.str(kMagicLen, "the magic");
    WeightsManifest m;
    m.file_size = r.u(8, "the file size");
    m.header_size = r.u(8, "the header size");
    if (m.header_size > m.file_size)
        throw GgufError("manifest: header size " + std::to_string(m.header_size) + " exceeds the file size " +
                        std::to_string(m.file_size));
    r.bytes(m.digests.header.data(), 32, "the header digest");
    const uint64_t n = r.u(4, "the tensor count");
    if (n > kMaxManifestTensors) throw GgufError("manifest: " + std::to_string(n) + " tensors is too many");
    if (n * (4 + 1 + 32) > r.left())
        throw GgufError("manifest: " + std::to_string(n) + " tensors cannot fit in " + std::to_string(r.left()) + " bytes");
    m.digests.tensors.resize(size_t(n));
    for (auto& t : m.digests.tensors) {
        const uint64_t len = r.u(4, "a tensor name length");
        if (len == 0 || len > kMaxManifestName)
            throw GgufError("manifest: tensor name of " + std::to_string(len) + " bytes at byte " + std::to_string(r.pos()));
        t.name = r.str(size_t(len), "a tensor name");
        r.bytes(t.digest.data(), 32, "a tensor digest");
    }
    if (r.left() != 0) throw GgufError("manifest: " + std::to_string(r.left()) + " bytes after the last tensor");
    return m;
}

}  // namespace llmn::model
