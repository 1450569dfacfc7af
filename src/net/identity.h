// A node's long-term Ed25519 identity (libsodium), kept in a key file that is
// created on first start with mode 0600.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/messages.h"

namespace llmn::net {

class Identity {
public:
    // A fresh random identity (not saved).
    static Identity generate();
    // Loads `path`, or creates it (and its folder) when absent. Throws
    // std::runtime_error naming the file when it is unreadable or malformed.
    static Identity load_or_create(const std::string& path);

    const Key32& public_key() const { return pk_; }
    Sig64 sign(const uint8_t* data, size_t size) const;
    // Lower-case hex of the public key (the node id in logs and routes).
    std::string id_hex() const;

private:
    Key32 pk_{};
    std::array<uint8_t, 64> sk_{};
};

bool verify_signature(const Key32& pk, const Sig64& sig, const uint8_t* data, size_t size);
std::string to_hex(const uint8_t* data, size_t size);
// BLAKE2b-256 of `bytes` (libsodium crypto_generichash); the model id is this
// digest over the GGUF header, metadata and tensor index.
Key32 digest256(std::string_view bytes);

// Calls sodium_init() once; throws if libsodium cannot start.
void ensure_sodium();

}  // namespace llmn::net
