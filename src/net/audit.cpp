#include "net/audit.h"

#include <sodium.h>

#include <cstring>
#include <string_view>

namespace llmn::net {

namespace {

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
template <size_t N>
void put(std::vector<uint8_t>& out, const std::array<uint8_t, N>& a) {
    out.insert(out.end(), a.begin(), a.end());
}
void put_label(std::vector<uint8_t>& out, std::string_view label) { out.insert(out.end(), label.begin(), label.end()); }

}  // namespace

Key32 hidden_digest(const std::vector<uint8_t>& bytes) {
    Key32 d{};
    crypto_generichash(d.data(), d.size(), bytes.data(), bytes.size(), nullptr, 0);
    return d;
}

std::vector<uint8_t> commit_statement(uint64_t next_session_id, uint32_t pos, uint32_t n_tokens, uint8_t dtype, const Key32& digest) {
    std::vector<uint8_t> t;
    put_label(t, "llm-node step commit v1");
    put_u64(t, next_session_id);
    put_u32(t, pos);
    put_u32(t, n_tokens);
    t.push_back(dtype);
    put(t, digest);
    return t;
}

std::vector<uint8_t> receipt_statement(const Key32& model_id, const Receipt& r) {
    std::vector<uint8_t> t;
    put_label(t, "llm-node step receipt v2");
    put(t, model_id);
    put_u64(t, r.session_id);
    put_u32(t, r.pos);
    put_u32(t, r.n_tokens);
    t.push_back(r.dtype);
    put(t, r.in_digest);
    put(t, r.out_digest);
    put(t, r.prev_commit);
    put(t, r.kv_digest);
    return t;
}

void sign_receipt(Receipt& r, const Key32& model_id, const Identity& id) {
    const std::vector<uint8_t> t = receipt_statement(model_id, r);
    r.signature = id.sign(t.data(), t.size());
}

bool receipt_valid(const Receipt& r, const Key32& model_id, const Key32& hop) {
    if (hidden_digest(r.hidden) != r.out_digest) return false;
    if (!r.kv.empty() && hidden_digest(r.kv) != r.kv_digest) return false;
    const std::vector<uint8_t> t = receipt_statement(model_id, r);
    return verify_signature(hop, r.signature, t.data(), t.size());
}

}  // namespace llmn::net
