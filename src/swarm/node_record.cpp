#include "swarm/node_record.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace llmn::swarm {
namespace {

// Prefixed to the signed bytes so that a record signature can never be
// replayed as a signature of another message type made with the same key.
constexpr std::string_view kSignTag = "llm-node/v1/node-record";
constexpr size_t kSigSize = 64;

class Writer {
public:
    void u8(uint8_t v) { out_.push_back(char(v)); }
    void u32(uint32_t v) {
        for (int i = 0; i < 4; ++i) u8(uint8_t(v >> (8 * i)));
    }
    void u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) u8(uint8_t(v >> (8 * i)));
    }
    void bytes(const uint8_t* p, size_t n) { out_.append(reinterpret_cast<const char*>(p), n); }
    void str(const std::string& s, size_t max, const char* field) {
        if (s.size() > max)
            throw RecordError(std::string("node record: ") + field + " is " + std::to_string(s.size()) +
                              " bytes, limit " + std::to_string(max));
        u8(uint8_t(s.size()));
        out_.append(s);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    uint8_t u8(const char* field) {
        need(1, field);
        return uint8_t(in_[pos_++]);
    }
    uint32_t u32(const char* field) {
        need(4, field);
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(in_[pos_ + i])) << (8 * i);
        pos_ += 4;
        return v;
    }
    uint64_t u64(const char* field) {
        need(8, field);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(in_[pos_ + i])) << (8 * i);
        pos_ += 8;
        return v;
    }
    template <size_t N>
    void bytes(std::array<uint8_t, N>& out, const char* field) {
        need(N, field);
        std::memcpy(out.data(), in_.data() + pos_, N);
        pos_ += N;
    }
    std::string str(size_t max, const char* field) {
        size_t n = u8(field);
        if (n > max)
            fail(std::string(field) + " length " + std::to_string(n) + " exceeds limit " + std::to_string(max));
        need(n, field);
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    void finish() {
        if (pos_ != in_.size())
            fail(std::to_string(in_.size() - pos_) + " trailing bytes after the signature");
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw RecordError("node record at offset " + std::to_string(pos_) + ": " + what);
    }

private:
    void need(size_t n, const char* field) const {
        if (in_.size() - pos_ < n)
            fail(std::string(field) + " needs " + std::to_string(n) + " bytes, " + std::to_string(in_.size() - pos_) +
                 " remain (record is " + std::to_string(in_.size()) + " bytes)");
    }
    std::string_view in_;
    size_t pos_ = 0;
};

// Everything but the signature, in wire order.
std::string encode_body(const NodeRecord& r) {
    Writer w;
    w.u8(NodeRecord::kFormat);
    w.bytes(r.node_id.data(), r.node_id.size());
    w.str(r.address, NodeRecord::kMaxAddress, "address");
    w.u32(r.span_start);
    w.u32(r.span_end);
    w.u32(r.n_layer);
    w.bytes(r.model_id.data(), r.model_id.size());
    w.u32(std::bit_cast<uint32_t>(r.tokens_per_s));
    w.u32(r.free_sessions);
    w.str(r.version, NodeRecord::kMaxVersion, "version");
    w.u64(r.expires_unix);
    return w.take();
}

}  // namespace

std::string NodeRecord::encode() const {
    std::string out = encode_body(*this);
    out.append(reinterpret_cast<const char*>(signature.data()), signature.size());
    return out;
}

NodeRecord NodeRecord::decode(std::string_view bytes) {
    if (bytes.size() > kMaxEncoded)
        throw RecordError("node record is " + std::to_string(bytes.size()) + " bytes, limit " +
                          std::to_string(kMaxEncoded));
    Reader rd(bytes);
    NodeRecord r;
    uint8_t format = rd.u8("format");
    if (format != kFormat)
        rd.fail("format " + std::to_string(format) + " is not supported (expected " + std::to_string(kFormat) +
                ")");
    rd.bytes(r.node_id, "node_id");
    r.address = rd.str(kMaxAddress, "address");
    r.span_start = rd.u32("span_start");
    r.span_end = rd.u32("span_end");
    r.n_layer = rd.u32("n_layer");
    rd.bytes(r.model_id, "model_id");
    r.tokens_per_s = std::bit_cast<float>(rd.u32("tokens_per_s"));
    r.free_sessions = rd.u32("free_sessions");
    r.version = rd.str(kMaxVersion, "version");
    r.expires_unix = rd.u64("expires_unix");
    rd.bytes(r.signature, "signature");
    rd.finish();
    if (r.n_layer == 0 || r.n_layer > kMaxLayers)
        rd.fail("n_layer " + std::to_string(r.n_layer) + " outside [1, " + std::to_string(kMaxLayers) + "]");
    if (r.span_start >= r.span_end || r.span_end > r.n_layer)
        rd.fail("span [" + std::to_string(r.span_start) + ", " + std::to_string(r.span_end) +
                ") is empty or outside [0, " + std::to_string(r.n_layer) + ")");
    if (!std::isfinite(r.tokens_per_s) || r.tokens_per_s < 0.f)
        rd.fail("tokens_per_s " + std::to_string(r.tokens_per_s) + " is not a finite value >= 0");
    if (r.address.empty()) rd.fail("address is empty");
    return r;
}

std::string NodeRecord::signed_bytes() const {
    std::string out(kSignTag);
    out += encode_body(*this);
    return out;
}

void NodeRecord::sign(const net::Identity& id) {
    node_id = id.public_key();
    std::string msg = signed_bytes();
    signature = id.sign(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
}

bool NodeRecord::verify() const {
    std::string msg;
    try {
        msg = signed_bytes();
    } catch (const RecordError&) {
        return false;  // a string over its limit cannot have been signed by encode()
    }
    return net::verify_signature(node_id, signature, reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
}

}  // namespace llmn::swarm
