// Weights through the swarm: a model's GGUF travels as a BitTorrent torrent in
// the same libtorrent session as the DHT (swarm/dht.h), so a node fetches only
// the pieces that hold its span.
//
// The torrent of a model is deterministic, so every node that holds the model
// seeds the same one: a hybrid (v1 + v2) torrent named "llm-node-<model id>"
// with two files, "model.gguf" and "manifest" (model/weights_manifest.h: the
// header's size and digest and every tensor's digest), and a piece size that
// depends only on the file size. v2 verifies every 16 KiB block against the
// file's merkle root, v1 every piece against the info dict; libtorrent bans a
// peer whose data fails. The torrent is only transport: what makes the bytes
// the model's is the manifest, which must hash to the model id (engine::model_id),
// and each tensor's digest, checked after download (model/partial_model.h). A
// node learns a torrent's info-hashes from nodes' signed NODE_INFO, so a bogus
// torrent costs a download of its manifest, never a wrong weight.
//
// Layout under the weights folder (default ~/.cache/llm-node/weights):
//   <hex id>/manifest            the manifest of a local file this process shares
//   <hex id>/torrent             the .torrent (bencoded), so a restart skips hashing
//   <hex id>/files/llm-node-<hex id>/model.gguf   a fetched (sparse) GGUF, with
//                                model.gguf.llmn-manifest / .llmn-verified beside it
// A fetched file is checked piece by piece when it is added again, so a fetch
// killed with kill -9 resumes with only unfinished pieces lost.
//
// Private swarms: torrents stay off the DHT, LSD and PEX; peers come only from
// NODE_INFO over links that proved the swarm key.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/identity.h"

namespace llmn::swarm {

class Dht;

// A torrent's info-hashes: SHA-1 (v1, 20 bytes) and SHA-256 (v2, 32 bytes).
struct TorrentId {
    std::array<uint8_t, 20> v1{};
    std::array<uint8_t, 32> v2{};
    std::vector<uint8_t> bytes() const;  // v1 || v2, as NODE_INFO carries it
    static std::optional<TorrentId> from_bytes(const std::vector<uint8_t>& b);  // nullopt unless 52 bytes
    std::string hex() const;  // the v2 hash in hex
    bool operator==(const TorrentId& o) const { return v1 == o.v1 && v2 == o.v2; }
};

class FetchError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Counters of one model's torrent in this process.
struct WeightsStats {
    uint64_t wanted_bytes = 0;      // bytes of the pieces the current fetch needs
    uint64_t wanted_done = 0;       // of those, verified on disk
    uint64_t downloaded = 0;        // payload bytes received (also failed and redundant ones)
    uint64_t failed_bytes = 0;      // bytes that failed the hash check
    uint64_t redundant_bytes = 0;   // blocks received twice (end game: asked of several peers)
    uint64_t uploaded = 0;          // payload bytes sent
    int hash_failures = 0;          // pieces that failed the hash check
    int banned_peers = 0;           // peers banned for sending them
    int peers = 0;                  // connected now
    double download_rate = 0;       // bytes/s now
    uint32_t piece_size = 0;
};

using WeightsProgress = std::function<void(const WeightsStats&)>;

// The piece size of a model's torrent: a power of two from 16 KiB (one block)
// to 4 MiB, about file_size / 4096: little is fetched beyond a span's ends, the
// v1 metadata stays under 100 KB, and a killed fetch loses few bytes.
uint32_t weights_piece_size(uint64_t file_size);
// ~/.cache/llm-node/weights (XDG_CACHE_HOME first); "" when neither is set.
std::string default_weights_dir();

class Weights {
public:
    // Uses `dht`'s libtorrent session (which must outlive this object);
    // `private_swarm`: keep torrents off the DHT, LSD and PEX.
    Weights(Dht& dht, std::string dir, bool private_swarm);
    ~Weights();
    Weights(const Weights&) = delete;
    Weights& operator=(const Weights&) = delete;

    // Seeds a complete local GGUF whose id is `model_id`: writes its manifest and
    // torrent (hashing the file once; cached by id), adds it to the session and
    // returns its info-hashes. Throws FetchError on I/O errors. A node's torrent
    // stays off the DHT (`on_dht` false): fetchers learn its BitTorrent port from
    // the node's NODE_INFO, and a DHT router blocks an IP whose start-up burst of
    // announces passes 5 packets/s (libtorrent's dht_block_ratelimit), which then
    // hides the node's own lookups for minutes. `llm-node share` has no NODE_INFO:
    // it announces its torrent on the DHT.
    TorrentId share(const std::string& gguf_path, const net::Key32& model_id, bool on_dht = false);

    // The local file of a model fetched (or being fetched) earlier, if any.
    std::string fetched_path(const net::Key32& model_id) const;

    // Joins torrent `tid` for `model_id` (from a node's signed NODE_INFO),
    // connecting to `peers` ("ip:port" BitTorrent endpoints) besides those the
    // DHT and LSD find; downloads the manifest and the GGUF header, checks them
    // against the model id and returns the local GGUF path (a partial file).
    // Throws FetchError when nothing arrives in `timeout` or the torrent is not
    // this model's.
    std::string open(const net::Key32& model_id, const TorrentId& tid, const std::vector<std::string>& peers,
                     std::chrono::seconds timeout, const WeightsProgress& progress = {});
    // Downloads the pieces holding `tensors` of an opened model, then checks
    // each tensor against the manifest (model::verify_tensors). Throws
    // FetchError on timeout or when a tensor fails.
    void fetch(const net::Key32& model_id, const std::vector<std::string>& tensors, std::chrono::seconds timeout,
               const WeightsProgress& progress = {});
    // Connects the model's torrent to more peers ("ip:port").
    void add_peers(const net::Key32& model_id, const std::vector<std::string>& peers);

    WeightsStats stats(const net::Key32& model_id) const;
    // stats() once libtorrent's once-a-second byte totals have settled (2.2 to
    // 4.4 s), so the figures include the last second of a fetch.
    WeightsStats settled_stats(const net::Key32& model_id) const;
    // The info-hashes of the model's torrent in this session, if it has one.
    std::optional<TorrentId> torrent_of(const net::Key32& model_id) const;
    // Download cap in bytes/s for every torrent (0: none).
    void set_download_limit(uint64_t bytes_per_s);
    // The BitTorrent TCP port peers connect to.
    uint16_t port() const;
    // Makes a running and every later open() / fetch() throw FetchError at
    // once (a node told to stop). Async-signal-safe: it sets a flag.
    void cancel();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace llmn::swarm
