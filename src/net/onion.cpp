#include "net/onion.h"

#include <sodium.h>

#include <array>
#include <cstring>

#include "net/identity.h"

namespace llmn::net {
namespace {

std::array<uint8_t, 8> seq_bytes(uint64_t seq) {
    std::array<uint8_t, 8> b{};
    for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(seq >> (8 * i));
    return b;
}

constexpr size_t kSlotPlain = kOnionSlot - crypto_box_SEALBYTES;

// XORs `len` bytes at `p` with the stream of `key` (used for one onion only, so a zero nonce is safe).
void mask(uint8_t* p, size_t len, const Key32& key) {
    const std::array<uint8_t, crypto_stream_xchacha20_NONCEBYTES> nonce{};
    crypto_stream_xchacha20_xor(p, p, len, nonce.data(), key.data());
}

}  // namespace

std::vector<uint8_t> build_onion(const std::vector<Key32>& onion_pks, std::vector<OnionLayer> layers) {
    ensure_sodium();
    const size_t n = layers.size();
    if (n == 0 || n > kOnionHops || onion_pks.size() != n)
        throw NetError(Errc::internal, "an onion has 1.." + std::to_string(kOnionHops) + " hops, not " + std::to_string(n));
    std::vector<std::vector<uint8_t>> slots(n);
    for (size_t i = 0; i < n; ++i) {
        layers[i].peel_key = random_key();
        const std::vector<uint8_t> body = encode(layers[i]);
        if (body.size() + 2 > kSlotPlain) throw NetError(Errc::internal, "onion layer of " + std::to_string(body.size()) + " bytes does not fit a slot");
        std::vector<uint8_t> plain(kSlotPlain, 0);
        plain[0] = uint8_t(body.size());
        plain[1] = uint8_t(body.size() >> 8);
        std::memcpy(plain.data() + 2, body.data(), body.size());
        slots[i] = seal_to(onion_pks[i], plain);
    }
    // rest = what follows hop i's slot in the onion hop i receives; built from the last hop back.
    const size_t rest_len = kOnionBytes - kOnionSlot;
    std::vector<uint8_t> rest(rest_len);
    randombytes_buf(rest.data(), rest.size());
    for (size_t i = n - 1; i-- > 0;) {
        std::vector<uint8_t> r(rest_len);
        std::memcpy(r.data(), slots[i + 1].data(), kOnionSlot);
        std::memcpy(r.data() + kOnionSlot, rest.data(), rest_len - kOnionSlot);
        mask(r.data(), r.size(), layers[i].peel_key);
        rest = std::move(r);
    }
    std::vector<uint8_t> onion(slots[0]);
    onion.insert(onion.end(), rest.begin(), rest.end());
    return onion;
}

std::optional<PeeledOnion> peel_onion(const OnionKeys& keys, const std::vector<uint8_t>& onion) {
    if (onion.size() != kOnionBytes) return std::nullopt;
    const std::vector<uint8_t> slot(onion.begin(), onion.begin() + kOnionSlot);
    const auto plain = open_sealed(keys, slot);
    if (!plain) return std::nullopt;
    const size_t len = size_t((*plain)[0]) | size_t((*plain)[1]) << 8;
    if (len + 2 > plain->size()) throw NetError(Errc::bad_message, "onion layer length " + std::to_string(len) + " exceeds its slot");
    Message m = decode(plain->data() + 2, len);
    auto* layer = std::get_if<OnionLayer>(&m);
    if (!layer) throw NetError(Errc::bad_message, "the onion slot holds " + to_string(m) + ", not an onion layer");
    PeeledOnion out;
    out.layer = std::move(*layer);
    out.next.assign(onion.begin() + kOnionSlot, onion.end());
    mask(out.next.data(), out.next.size(), out.layer.peel_key);
    out.next.resize(kOnionBytes);
    randombytes_buf(out.next.data() + (kOnionBytes - kOnionSlot), kOnionSlot);
    std::memcpy(out.tag.data(), slot.data(), out.tag.size());
    return out;
}

OnionKeys OnionKeys::generate() {
    ensure_sodium();
    OnionKeys k;
    crypto_box_keypair(k.pk.data(), k.sk.data());
    return k;
}

Key32 random_key() {
    ensure_sodium();
    Key32 k;
    randombytes_buf(k.data(), k.size());
    return k;
}

uint64_t random_u64() {
    ensure_sodium();
    uint64_t v = 0;
    while (v == 0) randombytes_buf(&v, sizeof v);
    return v;
}

std::vector<uint8_t> seal_to(const Key32& onion_pk, const std::vector<uint8_t>& plain) {
    ensure_sodium();
    std::vector<uint8_t> box(plain.size() + crypto_box_SEALBYTES);
    if (crypto_box_seal(box.data(), plain.data(), plain.size(), onion_pk.data()) != 0) throw NetError(Errc::internal, "crypto_box_seal failed");
    return box;
}

std::optional<std::vector<uint8_t>> open_sealed(const OnionKeys& keys, const std::vector<uint8_t>& box) {
    if (box.size() < crypto_box_SEALBYTES) return std::nullopt;
    std::vector<uint8_t> plain(box.size() - crypto_box_SEALBYTES);
    if (crypto_box_seal_open(plain.data(), box.data(), box.size(), keys.pk.data(), keys.sk.data()) != 0) return std::nullopt;
    return plain;
}

std::vector<uint8_t> seal_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& plain) {
    ensure_sodium();
    constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    std::vector<uint8_t> out(kNonce + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    randombytes_buf(out.data(), kNonce);
    const auto ad = seq_bytes(seq);
    unsigned long long n = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kNonce, &n, plain.data(), plain.size(), ad.data(), ad.size(), nullptr,
                                               out.data(), key.data());
    out.resize(kNonce + size_t(n));
    return out;
}

std::optional<std::vector<uint8_t>> open_cell(const Key32& key, uint64_t seq, const std::vector<uint8_t>& sealed) {
    constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (sealed.size() < kNonce + crypto_aead_xchacha20poly1305_ietf_ABYTES) return std::nullopt;
    std::vector<uint8_t> plain(sealed.size() - kNonce - crypto_aead_xchacha20poly1305_ietf_ABYTES);
    const auto ad = seq_bytes(seq);
    unsigned long long n = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.data(), &n, nullptr, sealed.data() + kNonce, sealed.size() - kNonce, ad.data(),
                                                   ad.size(), sealed.data(), key.data()) != 0)
        return std::nullopt;
    plain.resize(size_t(n));
    return plain;
}

}  // namespace llmn::net
