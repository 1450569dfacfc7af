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

// Onions have one size whatever the number of hops: kOnionHops slots of
// kOnionSlot bytes. A hop's slot is its OnionLayer (length-prefixed, zero
// padded) sealed to its onion key; the slots after it are masked with the
// layer's peel_key stream. A hop opens the first slot, unmasks the rest,
// shifts it forward and appends random bytes, so every hop sees kOnionBytes
// of ciphertext and cannot tell how many hops follow (the mix-net header
// with filler of Chaum and of Danezis and Goldberg's Sphinx, without its MACs:
// each sealed slot authenticates itself).
inline constexpr size_t kOnionHops = 12;
inline constexpr size_t kOnionSlot = 512;
inline constexpr size_t kOnionBytes = kOnionHops * kOnionSlot;

// The onion for members with these onion keys and layers (in ring order, at
// most kOnionHops; each layer's peel_key is set here). Throws NetError when a
// layer does not fit its slot.
std::vector<uint8_t> build_onion(const std::vector<Key32>& onion_pks, std::vector<OnionLayer> layers);
struct PeeledOnion {
    OnionLayer layer;
    std::vector<uint8_t> next;  // the onion for the next hop (kOnionBytes)
    Key32 tag{};                // identifies this sealed slot (its ephemeral key), for the replay cache
};
// nullopt when the onion has the wrong size or its first slot was not sealed
// to `keys`; throws NetError when the slot opens but holds no valid layer.
std::optional<PeeledOnion> peel_onion(const OnionKeys& keys, const std::vector<uint8_t>& onion);

std::vector<uint8_t> seal_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& plain);
std::optional<std::vector<uint8_t>> open_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& sealed);

}  // namespace llmn::net
