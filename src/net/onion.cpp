#include "net/onion.h"

#include <sodium.h>

#include <cstring>

#include "net/identity.h"

namespace llmn::net {
namespace {

std::array<uint8_t, 8> seq_bytes(uint64_t seq) {
    std::array<uint8_t, 8> b{};
    for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(seq >> (8 * i));
    return b;
}

}  // namespace

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
