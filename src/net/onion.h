// The sealing used by onion circuits, from libsodium's high-level
// constructions: each hop's layer is a crypto_box_seal to the hop's X25519
// onion key (anonymous sender, fresh ephemeral key per layer), and the cells
// between the client and the first / last span are XChaCha20-Poly1305 with a
// random nonce and the cell's sequence number as associated data, so a relay
// can neither read, alter, replay nor reorder them.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "net/messages.h"

namespace llmn::net {

struct OnionKeys {
    Key32 pk{}, sk{};
    static OnionKeys generate();
};

Key32 random_key();
uint64_t random_u64();

std::vector<uint8_t> seal_to(const Key32& onion_pk, const std::vector<uint8_t>& plain);
// nullopt when the box was not sealed to this key pair or was altered.
std::optional<std::vector<uint8_t>> open_sealed(const OnionKeys& keys, const std::vector<uint8_t>& box);

std::vector<uint8_t> seal_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& plain);
std::optional<std::vector<uint8_t>> open_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& sealed);

}  // namespace llmn::net
