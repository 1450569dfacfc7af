#include "net/swarm_key.h"

#include <sodium.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "net/identity.h"

namespace llmn::net {
namespace {

static_assert(crypto_kdf_KEYBYTES == 32 && crypto_kdf_CONTEXTBYTES == 8);
static_assert(crypto_generichash_KEYBYTES_MAX >= 32);

constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "llmnswrm";
constexpr size_t kMaxKeyFile = 66;  // 64 hex digits + "\r\n"

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

const char kMakeOne[] = " (make one with: head -c 32 /dev/urandom > swarm.key)";

}  // namespace

SwarmKey parse_swarm_key(std::string_view content, const std::string& where) {
    SwarmKey key{};
    if (content.size() == key.size()) {
        std::copy(content.begin(), content.end(), key.begin());
    } else {
        std::string_view hex = content;
        if (hex.size() >= 1 && hex.back() == '\n') hex.remove_suffix(1);
        if (hex.size() >= 1 && hex.back() == '\r') hex.remove_suffix(1);
        if (hex.size() != 2 * key.size())
            throw std::runtime_error("swarm key " + where + ": " + std::to_string(content.size()) +
                                     " bytes; want 32 raw bytes or 64 hex digits" + kMakeOne);
        for (size_t i = 0; i < key.size(); ++i) {
            const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                throw std::runtime_error("swarm key " + where + ": not a hex digit at offset " +
                                         std::to_string(hi < 0 ? 2 * i : 2 * i + 1) + "; want 32 raw bytes or 64 hex digits");
            key[i] = uint8_t(hi << 4 | lo);
        }
    }
    // A file of zeros (head -c 32 /dev/zero) is a mistake, not a secret.
    if (sodium_is_zero(key.data(), key.size()))
        throw std::runtime_error("swarm key " + where + ": all 32 bytes are zero" + kMakeOne);
    return key;
}

SwarmKey load_swarm_key(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read swarm key file " + path + kMakeOne);
    std::string content;
    // Read one byte past the limit so an oversize file is reported by size, not truncated.
    content.resize(kMaxKeyFile + 1);
    in.read(content.data(), std::streamsize(content.size()));
    content.resize(size_t(in.gcount()));
    std::string where = path;
    if (content.size() > kMaxKeyFile) where += " (more than 66 bytes)";
    const SwarmKey key = parse_swarm_key(content, where);
    sodium_memzero(content.data(), content.size());
    return key;
}

SwarmKey swarm_subkey(const SwarmKey& key, SwarmKeyUse use) {
    ensure_sodium();
    SwarmKey sub{};
    crypto_kdf_derive_from_key(sub.data(), sub.size(), uint64_t(use), kKdfContext, key.data());
    return sub;
}

SwarmKey swarm_digest(const SwarmKey& key, SwarmKeyUse use, std::string_view label, const uint8_t* data, size_t size) {
    SwarmKey sub = swarm_subkey(key, use);
    crypto_generichash_state st;
    crypto_generichash_init(&st, sub.data(), sub.size(), 32);
    crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
    crypto_generichash_update(&st, data, size);
    SwarmKey out{};
    crypto_generichash_final(&st, out.data(), out.size());
    sodium_memzero(sub.data(), sub.size());
    sodium_memzero(&st, sizeof st);
    return out;
}

}  // namespace llmn::net
