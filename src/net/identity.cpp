// Ed25519 identities (libsodium crypto_sign_*). The key file holds the 32-byte
// seed as 64 lower-case hex digits and a newline; it is created with mode 0600.
#include "net/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace llmn::net {

namespace {

constexpr size_t kSeedBytes = crypto_sign_SEEDBYTES;
static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SECRETKEYBYTES == 64 && crypto_sign_BYTES == 64);
static_assert(crypto_generichash_BYTES == 32);

// Wipes a secret buffer when it goes out of scope.
struct Wipe {
    void* p;
    size_t n;
    ~Wipe() { sodium_memzero(p, n); }
};

std::runtime_error file_error(const std::string& path, const std::string& what) {
    return std::runtime_error("identity key file " + path + ": " + what);
}

void write_new_key_file(const std::string& path, const std::string& text) {
    namespace fs = std::filesystem;
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) throw file_error(path, "cannot create folder " + parent.string() + ": " + ec.message());
    // O_EXCL: never overwrite a key that appeared meanwhile.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw file_error(path, std::string("cannot create: ") + std::strerror(errno));
    ::fchmod(fd, 0600);  // whatever the umask says
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(path.c_str());
            throw file_error(path, "cannot write: " + why);
        }
        done += size_t(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) throw file_error(path, std::string("cannot sync: ") + std::strerror(errno));
}

}  // namespace

void ensure_sodium() {
    static const int rc = sodium_init();  // thread-safe once; 1 means "already initialised"
    if (rc < 0) throw std::runtime_error("libsodium failed to initialise (sodium_init() < 0)");
}

Identity Identity::generate() {
    ensure_sodium();
    Identity id;
    crypto_sign_keypair(id.pk_.data(), id.sk_.data());
    return id;
}

Identity Identity::load_or_create(const std::string& path) {
    ensure_sodium();
    std::array<uint8_t, kSeedBytes> seed{};
    Wipe wipe_seed{seed.data(), seed.size()};
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        randombytes_buf(seed.data(), seed.size());
        std::string text = to_hex(seed.data(), seed.size()) + "\n";
        Wipe wipe_text{text.data(), text.size()};
        try {
            write_new_key_file(path, text);
        } catch (const std::runtime_error&) {
            if (!std::filesystem::exists(path, ec)) throw;
            return load_or_create(path);  // another process created it first
        }
    } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
        char buf[256];
        in.read(buf, sizeof buf);
        const size_t n = size_t(in.gcount());
        Wipe wipe_buf{buf, sizeof buf};
        size_t end = n;
        while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' ')) --end;
        size_t bin_len = 0;
        const char* hex_end = nullptr;
        if (end != 2 * kSeedBytes ||
            sodium_hex2bin(seed.data(), seed.size(), buf, end, nullptr, &bin_len, &hex_end) != 0 ||
            bin_len != kSeedBytes || hex_end != buf + end)
            throw file_error(path, "malformed: want " + std::to_string(2 * kSeedBytes) +
                                       " hex digits (an Ed25519 seed) and a newline, found " + std::to_string(n) +
                                       " bytes");
    }
    Identity id;
    crypto_sign_seed_keypair(id.pk_.data(), id.sk_.data(), seed.data());
    return id;
}

Sig64 Identity::sign(const uint8_t* data, size_t size) const {
    Sig64 sig{};
    crypto_sign_detached(sig.data(), nullptr, data, size, sk_.data());
    return sig;
}

std::string Identity::id_hex() const { return to_hex(pk_.data(), pk_.size()); }

bool verify_signature(const Key32& pk, const Sig64& sig, const uint8_t* data, size_t size) {
    ensure_sodium();
    return crypto_sign_verify_detached(sig.data(), data, size, pk.data()) == 0;
}

std::string to_hex(const uint8_t* data, size_t size) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    s.reserve(2 * size);
    for (size_t i = 0; i < size; ++i) {
        s += digits[data[i] >> 4];
        s += digits[data[i] & 15];
    }
    return s;
}

Key32 digest256(std::string_view bytes) {
    ensure_sodium();
    Key32 out{};
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                       nullptr, 0);
    return out;
}

}  // namespace llmn::net
