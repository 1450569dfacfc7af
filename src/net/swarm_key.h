// Private swarms: a 32-byte secret shared by a swarm's nodes and clients
// (`--swarm-key FILE`; make one with `head -c 32 /dev/urandom > swarm.key`).
// The key is never used directly and never leaves the process: each use gets
// its own subkey (libsodium crypto_kdf), and only keyed digests of it are
// published (the DHT info-hash and record salt) or sent (the link handshake's
// proof, a MAC over that handshake's transcript).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmn::net {

// The same type as net::Key32 (messages.h), without pulling in the codec.
using SwarmKey = std::array<uint8_t, 32>;

// Reads a key file: exactly 32 raw bytes, or 64 hex digits optionally
// followed by one newline ("\n" or "\r\n"). Throws std::runtime_error naming
// the file and what is wrong with it (missing, size, bad digit, all zeros).
SwarmKey load_swarm_key(const std::string& path);
// The same rules on a file's content; `where` names it in the error.
SwarmKey parse_swarm_key(std::string_view content, const std::string& where);

// What a subkey is for. Values are part of the protocol: never renumber.
enum class SwarmKeyUse : uint64_t {
    link_proof = 1,    // the handshake MAC each side sends (crypto_auth)
    link_session = 2,  // mixed into both secretstream keys of a link
    dht = 3,           // the swarm's info-hash and BEP 44 record salt
};

// The subkey of `key` for `use` (crypto_kdf_derive_from_key, context "llmnswrm").
SwarmKey swarm_subkey(const SwarmKey& key, SwarmKeyUse use);
// BLAKE2b-256 of `label | data`, keyed by the `use` subkey of `key`.
SwarmKey swarm_digest(const SwarmKey& key, SwarmKeyUse use, std::string_view label, const uint8_t* data, size_t size);

}  // namespace llmn::net
