// Per-tensor digests of a GGUF file: BLAKE2b-256 of each tensor's data bytes,
// computed once per file and cached on disk, so that an id over the weights
// costs one read of the file the first time and a few kilobytes after that.
//
// What is covered: the header (metadata + tensor index, GgufFile::header_bytes())
// as one digest, and each tensor's nbytes data bytes as one digest each, in
// tensor-index order. Alignment padding between tensors and bytes after the last
// one are not covered: no computation reads them.
//
// The cache is a small binary file, first `<model path>.llmn-digests` beside the
// model, else (folder not writable, or with no write bit: root too leaves a
// folder marked read-only alone) `$XDG_CACHE_HOME/llm-node/digests/` or
// `$HOME/.cache/llm-node/digests/`; when neither can be written the digests are
// computed each time and one line says so on stderr. A cache file is used only
// when its format version, the model's size, mtime, ctime and inode and the
// header digest all match, the tensor names match the index, and its trailing
// checksum is right; anything else (stale, truncated, corrupt) is ignored and
// rewritten. Files are written to a temporary name and renamed, so processes
// starting at once on one model never read a half-written cache.
//
// Timestamps cannot tell apart two versions of a file written within one clock
// tick, so a file changed less than kRacyWindowSeconds before it was hashed
// (a model just written, as in tests) is hashed again by the next process and
// the next call, never cached (git's "racily clean" rule).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmn::model {

class GgufFile;

using Digest32 = std::array<uint8_t, 32>;

struct TensorDigest {
    std::string name;
    Digest32 digest{};  // BLAKE2b-256 of the tensor's data bytes
};

struct TensorDigests {
    Digest32 header{};                  // BLAKE2b-256 of header_bytes()
    std::vector<TensorDigest> tensors;  // one per tensor, in tensor-index order
};

inline constexpr int kRacyWindowSeconds = 2;

// Where load_tensor_digests() found the digests.
enum class DigestSource {
    cache_file,  // a valid cache file (cache_path)
    computed,    // hashed now; written to cache_path unless that is empty
};

struct DigestLoad {
    std::shared_ptr<const TensorDigests> digests;
    DigestSource source = DigestSource::computed;
    std::string cache_path;  // the file read or written; "" when none was
};

// The digests of `file`, memoized in this process (thread-safe; the memo is keyed
// by path and the file's size, times and inode, so a file changed on disk is
// hashed again). Throws GgufError naming the file and offset on a read error.
std::shared_ptr<const TensorDigests> tensor_digests(const GgufFile& file);

// The same without the in-process memo, saying where the digests came from.
DigestLoad load_tensor_digests(const GgufFile& file);

// BLAKE2b-256 of `n` bytes: the digest a tensor's data must have.
Digest32 digest_bytes(const void* data, size_t n);

// The cache file beside `model_path`.
std::string digest_cache_path_beside(const std::string& model_path);
// The user cache folder for digests ("" when neither XDG_CACHE_HOME nor HOME is set).
std::string digest_cache_dir();

}  // namespace llmn::model
