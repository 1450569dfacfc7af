#include "model/tensor_digests.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "model/gguf_reader.h"
#include "model/partial_model.h"

namespace llmn::model {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'L', 'L', 'M', 'N', 'D', 'G', 'S', 'T'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kChunk = size_t(4) << 20;          // bytes read per pread
constexpr uint64_t kParallelFrom = uint64_t(32) << 20;  // hash in several threads from this much data
constexpr unsigned kMaxThreads = 8;

// What identifies one version of a file on disk, short of reading it.
struct FileStamp {
    uint64_t size = 0;
    uint64_t ino = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
};

int64_t to_ns(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

FileStamp stamp_of(const struct stat& st) {
    return {uint64_t(st.st_size), uint64_t(st.st_ino), to_ns(st.st_mtim), to_ns(st.st_ctim)};
}

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    int get() const { return fd_; }
    bool ok() const { return fd_ >= 0; }

private:
    int fd_;
};

// Reads exactly n bytes at `off`; false on EOF or error (errno set).
bool pread_all(int fd, uint8_t* out, size_t n, uint64_t off) {
    while (n > 0) {
        const ssize_t r = ::pread(fd, out, n, off_t(off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO;
            return false;
        }
        out += r, n -= size_t(r), off += uint64_t(r);
    }
    return true;
}

// Everything one call needs to know about the file behind a GgufFile.
struct Probe {
    Digest32 header{};
    Fd fd;
    FileStamp stamp;
    bool readable = false;  // fd is the mapped file (same size, same header bytes)
};

Probe probe(const GgufFile& f) {
    Probe p;
    const std::string_view h = f.header_bytes();
    p.header = digest_bytes(h.data(), h.size());
    // Parsed from memory ("<memory>"): hashed from its bytes. (A buffer parsed under
    // a real path is read back from that path when its size and header match.)
    if (f.path().empty() || f.path().front() == '<') return p;
    p.fd = Fd(::open(f.path().c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!p.fd.ok() || ::fstat(p.fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return p;
    p.stamp = stamp_of(st);
    if (p.stamp.size != f.file_size()) return p;  // replaced since it was mapped
    std::vector<uint8_t> head(h.size());
    p.readable =
        pread_all(p.fd.get(), head.data(), head.size(), 0) && std::memcmp(head.data(), h.data(), h.size()) == 0;
    return p;
}

// Digest of [off, off + n) of the file, read through `buf` (so the mapping's pages
// are not faulted into this process: a node serving a span stays that small).
Digest32 digest_range(int fd, const std::string& path, const std::string& tensor, uint64_t off, uint64_t n,
                      std::vector<uint8_t>& buf) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, 32);
    while (n > 0) {
        const size_t k = size_t(std::min<uint64_t>(n, buf.size()));
        if (!pread_all(fd, buf.data(), k, off)) {
            const int e = errno;
            throw GgufError(path + ": reading the data of tensor '" + tensor + "' at offset " + std::to_string(off) +
                            " failed: " + std::strerror(e));
        }
        crypto_generichash_update(&st, buf.data(), k);
        off += k, n -= k;
    }
    Digest32 out{};
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

// One digest per tensor, largest tensors first over a few threads; from the file
// when `fd` is readable, else straight from the mapping.
std::vector<Digest32> hash_tensors(const GgufFile& f, int fd) {
    const auto& ts = f.tensors();
    std::vector<Digest32> out(ts.size());
    std::vector<size_t> order(ts.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ts[a].nbytes > ts[b].nbytes; });
    uint64_t total = 0;
    for (const auto& t : ts) total += t.nbytes;
    unsigned n_threads = 1;
    if (total >= kParallelFrom) n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
    n_threads = unsigned(std::min<size_t>(n_threads, std::max<size_t>(ts.size(), 1)));

    std::atomic<size_t> next{0};
    std::mutex error_mu;
    std::exception_ptr error;
    auto work = [&] {
        std::vector<uint8_t> buf(fd >= 0 ? kChunk : 0);
        for (size_t i; (i = next.fetch_add(1)) < order.size();) {
            const TensorInfo& t = ts[order[i]];
            try {
                out[order[i]] = fd >= 0 ? digest_range(fd, f.path(), t.name, t.offset, t.nbytes, buf)
                                        : digest_bytes(t.data, t.nbytes);
            } catch (...) {
                std::lock_guard lock(error_mu);
                if (!error) error = std::current_exception();
                next = order.size();
            }
        }
    };
    std::vector<std::thread> pool;
    try {
        for (unsigned i = 1; i < n_threads; ++i) pool.emplace_back(work);
    } catch (const std::system_error&) {  // no more threads: the ones started (and this one) do it all
    }
    work();
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
    return out;
}

// --- the cache file: little-endian, fixed layout (see encode_cache) ---

void put_u64(std::vector<uint8_t>& b, uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

// magic[8] version:u32 size:u64 ino:u64 mtime_ns:i64 ctime_ns:i64 header[32] count:u64,
// then per tensor name_len:u16 name digest[32], then BLAKE2b-256 of all bytes before it.
std::vector<uint8_t> encode_cache(const FileStamp& s, const TensorDigests& d) {
    std::vector<uint8_t> b(kMagic, kMagic + 8);
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(kFormatVersion >> (8 * i)));
    put_u64(b, s.size);
    put_u64(b, s.ino);
    put_u64(b, uint64_t(s.mtime_ns));
    put_u64(b, uint64_t(s.ctime_ns));
    b.insert(b.end(), d.header.begin(), d.header.end());
    put_u64(b, d.tensors.size());
    for (const auto& t : d.tensors) {
        b.push_back(uint8_t(t.name.size()));
        b.push_back(uint8_t(t.name.size() >> 8));
        b.insert(b.end(), t.name.begin(), t.name.end());
        b.insert(b.end(), t.digest.begin(), t.digest.end());
    }
    const Digest32 check = digest_bytes(b.data(), b.size());
    b.insert(b.end(), check.begin(), check.end());
    return b;
}

// The digests in `path` when it is a valid cache for this file version; nullptr
// otherwise. The size a valid cache must have follows from the tensor index, so
// nothing read from the cache decides an allocation.
std::shared_ptr<const TensorDigests> read_cache(const std::string& path, const GgufFile& f, const Probe& p) {
    size_t expected = 8 + 4 + 8 * 4 + 32 + 8 + 32;
    for (const auto& t : f.tensors()) {
        if (t.name.size() > 0xffff) return nullptr;
        expected += 2 + t.name.size() + 32;
    }
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.ok() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) != expected)
        return nullptr;
    std::vector<uint8_t> b(expected);
    if (!pread_all(fd.get(), b.data(), b.size(), 0)) return nullptr;

    auto d = std::make_shared<TensorDigests>();
    d->header = p.header;
    d->tensors.resize(f.tensors().size());
    for (size_t i = 0; i < d->tensors.size(); ++i) d->tensors[i].name = f.tensors()[i].name;
    // Everything but the digests is known: encode the same file with zero digests,
    // compare it byte for byte outside the digest slots, and read those out.
    const std::vector<uint8_t> want = encode_cache(p.stamp, *d);
    size_t pos = 8 + 4 + 8 * 4 + 32 + 8;
    if (std::memcmp(b.data(), want.data(), pos) != 0) return nullptr;
    for (auto& t : d->tensors) {
        const size_t name_bytes = 2 + t.name.size();
        if (std::memcmp(b.data() + pos, want.data() + pos, name_bytes) != 0) return nullptr;
        pos += name_bytes;
        std::memcpy(t.digest.data(), b.data() + pos, 32);
        pos += 32;
    }
    const Digest32 check = digest_bytes(b.data(), pos);
    if (std::memcmp(check.data(), b.data() + pos, 32) != 0) return nullptr;
    return d;
}

// Writes `bytes` to a temporary file beside `path` and renames it into place.
bool write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
    static std::atomic<unsigned> counter{0};
    const std::string tmp = path + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.ok()) return false;
    bool ok = true;
    for (size_t done = 0; ok && done < bytes.size();) {
        const ssize_t w = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) done += size_t(w);
    }
    ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) ::unlink(tmp.c_str());
    return ok;
}

std::string hex(const uint8_t* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
    return s;
}

// Cache locations in the order they are tried. The user-cache name carries the
// header digest, size and inode, so two files with one header (an original and an
// edited copy) keep separate entries.
std::vector<std::string> cache_paths(const GgufFile& f, const Probe& p) {
    std::vector<std::string> out{digest_cache_path_beside(f.path())};
    const std::string dir = digest_cache_dir();
    if (!dir.empty())
        out.push_back(dir + "/" + hex(p.header.data(), 16) + "-" + std::to_string(p.stamp.size) + "-" +
                      std::to_string(p.stamp.ino) + ".llmn-digests");
    return out;
}

// False when the folder of `path` has no write bit at all: a folder marked
// read-only (a shared models folder) is left alone even by root, who could write.
bool folder_allows_writing(const std::string& path) {
    struct stat st {};
    const fs::path dir = fs::path(path).parent_path();
    return ::stat(dir.empty() ? "." : dir.c_str(), &st) == 0 && (st.st_mode & 0222) != 0;
}

int64_t now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    return to_ns(t);
}

// load_tensor_digests() on an already probed file; `memoizable` says whether the
// result describes a settled version of the file (see kRacyWindowSeconds).
DigestLoad load_probed(const GgufFile& f, const Probe& p, bool* memoizable) {
    *memoizable = false;
    DigestLoad out;
    auto fill = [&](std::vector<Digest32> digests) {
        auto d = std::make_shared<TensorDigests>();
        d->header = p.header;
        d->tensors.resize(digests.size());
        for (size_t i = 0; i < digests.size(); ++i) d->tensors[i] = {f.tensors()[i].name, digests[i]};
        out.digests = d;
    };
    if (!p.readable) {  // not a file we can read back (memory, or replaced on disk): hash what is mapped
        fill(hash_tensors(f, -1));
        return out;
    }
    const std::vector<std::string> paths = cache_paths(f, p);
    for (const auto& path : paths) {
        if (auto d = read_cache(path, f, p)) {
            *memoizable = true;
            return {d, DigestSource::cache_file, path};
        }
    }
    const int64_t t0 = now_ns();
    fill(hash_tensors(f, p.fd.get()));
    struct stat st {};
    if (::fstat(p.fd.get(), &st) != 0 || stamp_of(st) != p.stamp) return out;           // changed while read
    if (p.stamp.mtime_ns > t0 - int64_t(kRacyWindowSeconds) * 1000000000) return out;  // too fresh to trust
    *memoizable = true;
    const std::vector<uint8_t> bytes = encode_cache(p.stamp, *out.digests);
    for (size_t i = 0; i < paths.size(); ++i) {
        if (i == 0 && !folder_allows_writing(paths[i])) continue;
        if (i > 0) {
            std::error_code ec;
            fs::create_directories(fs::path(paths[i]).parent_path(), ec);
        }
        if (write_atomically(paths[i], bytes)) {
            out.cache_path = paths[i];
            return out;
        }
    }
    static std::once_flag warned;
    std::call_once(warned, [&] {
        std::fprintf(stderr,
                     "llm-node: cannot cache the tensor digests of %s (tried %s%s%s); they are computed at each start\n",
                     f.path().c_str(), paths[0].c_str(), paths.size() > 1 ? " and " : "",
                     paths.size() > 1 ? paths[1].c_str() : "");
    });
    return out;
}

}  // namespace

Digest32 digest_bytes(const void* data, size_t n) {
    Digest32 out{};
    crypto_generichash(out.data(), out.size(), static_cast<const unsigned char*>(data), n, nullptr, 0);
    return out;
}

std::string digest_cache_path_beside(const std::string& model_path) { return model_path + ".llmn-digests"; }

std::string digest_cache_dir() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) return std::string(xdg) + "/llm-node/digests";
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + "/.cache/llm-node/digests";
    return {};
}

DigestLoad load_tensor_digests(const GgufFile& file) {
    if (auto d = partial_digests(file)) return {d, DigestSource::cache_file, partial_manifest_path(file.path())};
    const Probe p = probe(file);
    bool memoizable = false;
    return load_probed(file, p, &memoizable);
}

std::shared_ptr<const TensorDigests> tensor_digests(const GgufFile& file) {
    if (auto d = partial_digests(file)) return d;  // a file fetched in part: its holes are not the model
    using Key = std::tuple<std::string, uint64_t, uint64_t, int64_t, int64_t, Digest32>;
    static std::mutex mu;  // held while hashing too: one process hashes one file once
    static std::map<Key, std::shared_ptr<const TensorDigests>> memo;
    const Probe p = probe(file);
    const Key key{file.path(), p.stamp.size, p.stamp.ino, p.stamp.mtime_ns, p.stamp.ctime_ns, p.header};
    std::lock_guard lock(mu);
    if (p.readable) {
        if (auto it = memo.find(key); it != memo.end()) return it->second;
    }
    bool memoizable = false;
    DigestLoad got = load_probed(file, p, &memoizable);
    if (memoizable) {
        if (memo.size() >= 64) memo.clear();  // a long-lived process that opened many files
        memo.emplace(key, got.digests);
    }
    return got.digests;
}

}  // namespace llmn::model
