// A node's signed self-description: who it is (its Ed25519 key), where it
// listens, which layers of which model it serves, how fast, and until when.
// The same bytes travel in the HELLO handshake and as the node's BEP 44
// mutable item in the DHT (key = node key, salt = model id), so a reader
// trusts a record only after verify() and only for the model it asked about.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "net/identity.h"
#include "net/messages.h"

namespace llmn::swarm {

// Thrown by NodeRecord::decode (and by encode for fields over their limits).
// what() names the field, the value or length found, and the limit.
class RecordError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct NodeRecord {
    // Format version written in the first byte. decode() rejects any other.
    static constexpr uint8_t kFormat = 1;
    // Limits that decode() and encode() enforce.
    static constexpr size_t kMaxAddress = 128;    // "ip:port", "[v6]:port", or "<64 hex id>@relay ip:port"
    static constexpr size_t kMaxVersion = 64;     // software version string
    static constexpr uint32_t kMaxLayers = 4096;  // n_layer above this is rejected
    // Largest encoding; a BEP 44 value holds 1000 bytes, bencoding adds 4.
    static constexpr size_t kMaxEncoded = 1 + 32 + 1 + kMaxAddress + 3 * 4 + 32 + 4 + 4 + 1 + kMaxVersion + 8 + 64;
    static_assert(kMaxEncoded < 900);

    net::Key32 node_id{};         // the node's Ed25519 public key
    std::string address;          // "ip:port" where the node is reached (through a relay: "id@relay")
    uint32_t span_start = 0;      // first layer served
    uint32_t span_end = 0;        // one past the last layer served
    uint32_t n_layer = 0;         // layers in the whole model
    net::Key32 model_id{};        // engine::model_id: metadata, tensor index and tensor data
    float tokens_per_s = 0.f;     // measured throughput of this span
    uint32_t free_sessions = 0;   // session slots open right now
    std::string version;          // llm-node version of the node
    uint64_t expires_unix = 0;    // seconds since 1970; stale after this
    net::Sig64 signature{};       // Ed25519 by node_id over all fields above

    // Compact little-endian encoding: format byte, fields in the order above,
    // strings as u8 length + bytes, signature last. Throws RecordError when a
    // string is over its limit.
    std::string encode() const;
    // Parses `bytes`. Throws RecordError on any defect: wrong format byte,
    // truncated field, over-long string, trailing bytes, span outside
    // [0, n_layer), n_layer over kMaxLayers, or throughput not finite and >= 0.
    // It checks lengths before reading and never allocates more than the input.
    static NodeRecord decode(std::string_view bytes);

    // Sets node_id to id's public key and signs every other field.
    void sign(const net::Identity& id);
    // True when `signature` is node_id's signature over every other field.
    bool verify() const;
    // True when expires_unix is at or before `now_unix`.
    bool expired(uint64_t now_unix) const { return expires_unix <= now_unix; }

    // The bytes that the signature covers: a domain tag and encode() minus
    // the signature.
    std::string signed_bytes() const;
};

}  // namespace llmn::swarm
