// Model weights as torrents in the DHT's libtorrent session (see weights.h).
// Callers block with deadlines and poll the torrent handle (libtorrent's calls
// are thread-safe); the only alert work (hash failures, bans) is counting,
// done on the Dht's alert thread through Dht::Impl::torrent_hook.
#include "swarm/weights.h"

#include <libtorrent/create_torrent.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include <cstdio>
#include <sstream>
#include <thread>

#include "engine/model_id.h"
#include "model/gguf_reader.h"
#include "model/partial_model.h"
#include "model/weights_manifest.h"
#include "swarm/dht_impl.h"
#include "swarm/weights_files.h"

namespace llmn::swarm {
namespace fs = std::filesystem;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(200);
constexpr uint64_t kMaxManifest = 64ull << 20;
const lt::download_priority_t kWant = lt::top_priority;

std::string hex_id(const net::Key32& id) { return net::to_hex(id.data(), id.size()); }
std::string torrent_name(const net::Key32& id) { return "llm-node-" + hex_id(id); }

TorrentId id_of(const lt::info_hash_t& ih) {
    TorrentId t;
    std::memcpy(t.v1.data(), ih.v1.data(), 20);
    std::memcpy(t.v2.data(), ih.v2.data(), 32);
    return t;
}

lt::info_hash_t to_lt(const TorrentId& t) {
    return lt::info_hash_t(lt::sha1_hash(reinterpret_cast<const char*>(t.v1.data())),
                           lt::sha256_hash(reinterpret_cast<const char*>(t.v2.data())));
}

// The two real files of a model torrent (pad files aside), or nullopt when the
// torrent is laid out otherwise.
struct Layout {
    lt::file_index_t gguf, manifest;
};
std::optional<Layout> layout_of(const lt::torrent_info& ti, const net::Key32& id) {
    const lt::file_storage& f = ti.files();
    if (ti.name() != torrent_name(id)) return std::nullopt;
    std::optional<lt::file_index_t> g, m;
    for (lt::file_index_t i : f.file_range()) {
        if (f.pad_file_at(i)) continue;
        const std::string name(f.file_name(i));
        if (name == "model.gguf" && !g) g = i;
        else if (name == "manifest" && !m) m = i;
        else return std::nullopt;
    }
    if (!g || !m || f.file_size(*m) > int64_t(kMaxManifest) || f.file_size(*g) <= 0) return std::nullopt;
    return Layout{*g, *m};
}

std::vector<lt::tcp::endpoint> endpoints(const std::vector<std::string>& peers) {
    std::vector<lt::tcp::endpoint> out;
    for (const auto& p : peers) {
        const auto colon = p.rfind(':');
        if (colon == std::string::npos) continue;
        std::string host = p.substr(0, colon);
        if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        lt::error_code ec;
        const auto ip = lt::make_address(host, ec);
        const int port = std::atoi(p.c_str() + colon + 1);
        if (!ec && port > 0 && port < 65536) out.emplace_back(ip, uint16_t(port));
    }
    return out;
}

}  // namespace

struct Torrent {
    net::Key32 model_id{};
    lt::torrent_handle h;
    Layout layout{};
    std::string gguf;             // the local GGUF
    bool fetched = false;         // a partial file fetched here (else a complete one shared)
    uint64_t wanted_bytes = 0;    // the current fetch
    uint64_t had_at_open = 0;     // bytes of verified pieces on disk when opened (a resumed fetch)
    std::vector<lt::piece_index_t> wanted;
    // Peers we were told of. libtorrent drops seeds once it has every piece it
    // wants, so a later fetch (a span move) dials them again.
    std::vector<lt::tcp::endpoint> known;
    std::mutex known_mu;
    // Adds `eps` to the known peers (at most 64) and dials every known one.
    void connect(const std::vector<lt::tcp::endpoint>& eps) {
        std::lock_guard lk(known_mu);
        for (const auto& ep : eps)
            if (known.size() < 64 && std::find(known.begin(), known.end(), ep) == known.end()) known.push_back(ep);
        for (const auto& ep : known) h.connect_peer(ep);
    }
    std::atomic<int> hash_failures{0}, banned{0};
    int errors = 0;  // torrent errors resumed after
};

struct Weights::Impl {
    Dht::Impl& d;
    std::string dir;
    bool private_swarm = false;
    mutable std::mutex mu;  // torrents; never held while calling into the Dht
    std::map<net::Key32, std::shared_ptr<Torrent>> torrents;
    uint64_t download_limit = 0;
    std::atomic<bool> cancelled{false};

    Impl(Dht::Impl& dht, std::string d_, bool priv) : d(dht), dir(std::move(d_)), private_swarm(priv) {}

    std::string model_dir(const net::Key32& id) const { return dir + "/" + hex_id(id); }
    std::shared_ptr<Torrent> find(const net::Key32& id) const {
        std::lock_guard lk(mu);
        auto it = torrents.find(id);
        return it == torrents.end() ? nullptr : it->second;
    }
    std::shared_ptr<Torrent> need(const net::Key32& id) const {
        auto t = find(id);
        if (!t) throw FetchError("model " + hex_id(id).substr(0, 16) + " is not open in this process");
        return t;
    }
    lt::add_torrent_params base_params() const {
        lt::add_torrent_params p;
        p.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
        if (private_swarm) p.flags |= lt::torrent_flags::disable_dht | lt::torrent_flags::disable_lsd | lt::torrent_flags::disable_pex;
        if (download_limit) p.download_limit = int(std::min<uint64_t>(download_limit, INT32_MAX));
        return p;
    }
    std::shared_ptr<Torrent> add(const net::Key32& id, lt::add_torrent_params p) {
        lt::error_code ec;
        auto t = std::make_shared<Torrent>();
        t->model_id = id;
        t->h = d.ses->add_torrent(std::move(p), ec);
        if (ec) throw FetchError("cannot add the torrent of model " + hex_id(id).substr(0, 16) + ": " + ec.message());
        std::lock_guard lk(mu);
        torrents[id] = t;
        return t;
    }
    void remove(const std::shared_ptr<Torrent>& t) {
        d.ses->remove_torrent(t->h);
        std::lock_guard lk(mu);
        torrents.erase(t->model_id);
    }
    void on_alert(lt::alert* a) {
        const lt::torrent_alert* ta = lt::alert_cast<lt::hash_failed_alert>(a);
        const bool ban = !ta && (ta = lt::alert_cast<lt::peer_ban_alert>(a)) != nullptr;
        if (!ta) return;
        std::lock_guard lk(mu);
        for (auto& [id, t] : torrents)
            if (t->h == ta->handle) {
                ++(ban ? t->banned : t->hash_failures);
                std::fprintf(stderr, "[weights] %s\n", a->message().c_str());
            }
    }
    WeightsStats stats_of(const Torrent& t) const;
    // Waits for `done` (polled), reporting progress; throws at the deadline.
    template <class Done>
    void wait(Torrent& t, std::chrono::steady_clock::time_point deadline, const std::string& what, Done done,
              const WeightsProgress& progress) {
        auto next_report = std::chrono::steady_clock::now(), next_dial = next_report + std::chrono::seconds(1);
        for (;;) {
            if (done()) break;
            if (cancelled) throw FetchError("stopped while waiting for " + what);
            const auto now = std::chrono::steady_clock::now();
            if (std::getenv("LLM_NODE_WEIGHTS_DEBUG") && now >= next_dial) {
                const auto st = t.h.status();
                std::fprintf(stderr, "[weights-debug] %s: peers %d seeds %d state %d dl %lld rate %d flags %llx\n", what.c_str(),
                             st.num_peers, st.num_seeds, int(st.state), (long long)st.total_payload_download, st.download_payload_rate,
                             (unsigned long long)static_cast<uint64_t>(st.flags));
                if (st.errc) std::fprintf(stderr, "[weights-debug] error %s (file %d)\n", st.errc.message().c_str(), int(static_cast<int>(st.error_file)));
            }
            if (now >= next_dial && t.errors < 8) {  // a storage or hash error pauses the torrent: say so, go on
                const auto st = t.h.status();
                if (st.errc) {
                    std::fprintf(stderr, "[weights] %s (file %d): resuming\n", st.errc.message().c_str(),
                                 static_cast<int>(st.error_file));
                    ++t.errors;
                    t.h.clear_error();
                    t.h.resume();
                }
            }
            if (now >= next_dial) {  // no peer left (dropped as seeds, or gone): dial the known ones again
                if (t.h.status().num_peers == 0) t.connect({});
                next_dial = now + std::chrono::seconds(2);
            }
            if (progress && now >= next_report) {
                progress(stats_of(t));
                next_report = now + std::chrono::milliseconds(250);
            }
            if (now >= deadline) {
                const WeightsStats s = stats_of(t);
                throw FetchError("timed out waiting for " + what + " of model " + hex_id(t.model_id).substr(0, 16) + " (" +
                                 std::to_string(s.peers) + " peers connected, " + std::to_string(s.downloaded >> 10) +
                                 " KiB received)");
            }
            std::this_thread::sleep_for(kPoll);
        }
        if (progress) progress(stats_of(t));
    }
    void want_range(Torrent& t, const lt::torrent_info& ti, uint64_t offset, uint64_t size);
    static uint64_t have_bytes(const lt::torrent_status& st, const lt::torrent_info& ti) {
        uint64_t n = 0;
        for (int i = 0; i < st.pieces.size() && i < ti.num_pieces(); ++i)
            if (st.pieces[lt::piece_index_t(i)]) n += uint64_t(ti.piece_size(lt::piece_index_t(i)));
        return n;
    }
    // Whether every wanted piece passed its hash (one status call).
    static bool has_wanted(const Torrent& t) {
        const lt::torrent_status st = t.h.status(lt::torrent_handle::query_pieces);
        for (lt::piece_index_t p : t.wanted)
            if (static_cast<int>(p) >= st.pieces.size() || !st.pieces[p]) return false;
        return true;
    }
};

WeightsStats Weights::Impl::stats_of(const Torrent& t) const {
    WeightsStats s;
    // One call for every piece's state: have_piece() per piece is a round trip
    // to libtorrent's network thread each, thousands per poll.
    const lt::torrent_status st = t.h.status(lt::torrent_handle::query_pieces);
    s.downloaded = uint64_t(st.all_time_download);  // (total_payload_download restarts when a torrent resumes)
    s.failed_bytes = uint64_t(st.total_failed_bytes);
    s.redundant_bytes = uint64_t(st.total_redundant_bytes);
    s.uploaded = uint64_t(st.total_payload_upload);
    s.peers = st.num_peers;
    s.download_rate = st.download_payload_rate;
    s.hash_failures = t.hash_failures;
    s.banned_peers = t.banned;
    if (auto ti = t.h.torrent_file()) {
        s.piece_size = uint32_t(ti->piece_length());
        s.wanted_bytes = t.wanted_bytes;
        for (lt::piece_index_t p : t.wanted)
            if (static_cast<int>(p) < st.pieces.size() && st.pieces[p]) s.wanted_done += uint64_t(ti->piece_size(p));
        // libtorrent adds a peer's byte count to the torrent's once a second and
        // can lose the last second of a peer that disconnects (seeds do, once we
        // have what we want): never report less than the pieces that arrived.
        if (t.fetched) {
            const uint64_t had = have_bytes(st, *ti);
            const uint64_t arrived = (had > t.had_at_open ? had - t.had_at_open : 0) + s.failed_bytes + s.redundant_bytes;
            s.downloaded = std::max(s.downloaded, arrived);
        }
    }
    return s;
}

void Weights::Impl::want_range(Torrent& t, const lt::torrent_info& ti, uint64_t offset, uint64_t size) {
    if (size == 0) return;
    const lt::piece_index_t first = ti.map_file(t.layout.gguf, int64_t(offset), 1).piece;
    const lt::piece_index_t last = ti.map_file(t.layout.gguf, int64_t(offset + size - 1), 1).piece;
    std::vector<std::pair<lt::piece_index_t, lt::download_priority_t>> prio;
    for (lt::piece_index_t p = first; p <= last; ++p) {
        if (std::find(t.wanted.begin(), t.wanted.end(), p) != t.wanted.end()) continue;
        t.wanted.push_back(p);
        t.wanted_bytes += uint64_t(ti.piece_size(p));
        prio.emplace_back(p, kWant);
    }
    t.h.prioritize_pieces(prio);
}

Weights::Weights(Dht& dht, std::string dir, bool private_swarm)
    : impl_(std::make_unique<Impl>(*dht.impl_, dir.empty() ? default_weights_dir() : std::move(dir), private_swarm)) {
    if (impl_->dir.empty()) throw FetchError("no folder for weights: set HOME or XDG_CACHE_HOME, or give one");
    lt::settings_pack sp;
    sp.set_int(lt::settings_pack::connections_limit, 400);
    sp.set_int(lt::settings_pack::active_downloads, -1);
    sp.set_int(lt::settings_pack::active_seeds, -1);
    sp.set_int(lt::settings_pack::active_limit, -1);
    // libtorrent drops the seeds once it has the pieces it wants; a span fetched
    // later redials them, which by default it refuses for 60 s.
    sp.set_int(lt::settings_pack::min_reconnect_time, 1);
    // Weights are bulk data: TCP. libtorrent's uTP (LEDBAT over UDP) spends a
    // core on a few tens of MB/s and yields to any other traffic; incoming uTP stays on.
    sp.set_bool(lt::settings_pack::enable_outgoing_utp, false);
    // Several nodes of one machine (tests, bench) are several peers on one IP.
    if (impl_->d.cfg.one_machine) sp.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
    impl_->d.ses->apply_settings(std::move(sp));
    Impl* m = impl_.get();
    std::lock_guard lk(impl_->d.mu);
    impl_->d.torrent_hook = [m](lt::alert* a) { m->on_alert(a); };
}

Weights::~Weights() {
    {
        std::lock_guard lk(impl_->d.mu);
        impl_->d.torrent_hook = nullptr;
    }
    std::lock_guard lk(impl_->mu);
    for (auto& [id, t] : impl_->torrents) impl_->d.ses->remove_torrent(t->h);
}

void Weights::cancel() { impl_->cancelled = true; }

uint16_t Weights::port() const { return impl_->d.ses->listen_port(); }

void Weights::set_download_limit(uint64_t bytes_per_s) {
    impl_->download_limit = bytes_per_s;
    std::lock_guard lk(impl_->mu);
    for (auto& [id, t] : impl_->torrents) t->h.set_download_limit(int(std::min<uint64_t>(bytes_per_s, INT32_MAX)));
}

WeightsStats Weights::stats(const net::Key32& model_id) const {
    auto t = impl_->find(model_id);
    return t ? impl_->stats_of(*t) : WeightsStats{};
}

WeightsStats Weights::settled_stats(const net::Key32& model_id) const {
    // A torrent adds its peers' byte counts to its own once a second: read until
    // two reads a tick apart agree (at most 4 ticks).
    WeightsStats s = stats(model_id);
    for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        const WeightsStats next = stats(model_id);
        const bool same = next.downloaded == s.downloaded;
        s = next;
        if (same && i > 0) break;
    }
    return s;
}

std::optional<TorrentId> Weights::torrent_of(const net::Key32& model_id) const {
    auto t = impl_->find(model_id);
    if (!t) return std::nullopt;
    return id_of(t->h.info_hashes());
}

void Weights::add_peers(const net::Key32& model_id, const std::vector<std::string>& peers) {
    if (auto t = impl_->find(model_id))
        t->connect(endpoints(peers));
}

std::string Weights::fetched_path(const net::Key32& model_id) const {
    const std::string p = impl_->model_dir(model_id) + "/files/" + torrent_name(model_id) + "/model.gguf";
    std::error_code ec;
    return fs::exists(p, ec) ? p : "";
}

TorrentId Weights::share(const std::string& gguf_path, const net::Key32& model_id, bool on_dht) {
    Impl& m = *impl_;
    if (auto t = m.find(model_id)) return id_of(t->h.info_hashes());
    const std::string mdir = m.model_dir(model_id), name = torrent_name(model_id);
    std::error_code ec;
    fs::create_directories(mdir, ec);
    if (ec) throw FetchError("cannot create " + mdir + ": " + ec.message());
    const std::string abs_gguf = fs::absolute(gguf_path).string(), manifest_path = mdir + "/manifest";
    std::string manifest;
    {
        const auto file = model::GgufFile::open(abs_gguf);
        manifest = model::serialize_manifest(model::make_manifest(*file));
    }
    if (!fs::exists(manifest_path) || read_file(manifest_path, kMaxManifest) != manifest) write_file(manifest_path, manifest);
    const uint64_t gguf_size = fs::file_size(abs_gguf);

    // The torrent: cached by id (the id covers the bytes), else made once here.
    std::shared_ptr<lt::torrent_info> ti;
    const std::string torrent_path = mdir + "/torrent";
    if (fs::exists(torrent_path)) {
        lt::error_code lec;
        const std::string b = read_file(torrent_path, 256ull << 20);
        auto cached = std::make_shared<lt::torrent_info>(b.data(), int(b.size()), lec);
        const auto lay = lec ? std::nullopt : layout_of(*cached, model_id);
        if (lay && uint64_t(cached->files().file_size(lay->gguf)) == gguf_size &&
            uint64_t(cached->files().file_size(lay->manifest)) == manifest.size())
            ti = cached;
    }
    if (!ti) {
        // set_piece_hashes reads the files under a folder laid out as the
        // torrent: links to the real ones.
        const std::string stage = mdir + "/stage" + std::to_string(::getpid());
        fs::remove_all(stage, ec);
        fs::create_directories(stage + "/" + name);
        fs::create_symlink(abs_gguf, stage + "/" + name + "/model.gguf");
        fs::create_symlink(fs::absolute(manifest_path), stage + "/" + name + "/manifest");
        lt::file_storage files;
        files.add_file(name + "/model.gguf", int64_t(gguf_size));
        files.add_file(name + "/manifest", int64_t(manifest.size()));
        lt::create_torrent ct(files, int(weights_piece_size(gguf_size)));
        lt::error_code lec;
        lt::set_piece_hashes(ct, stage, lec);
        fs::remove_all(stage, ec);
        if (lec) throw FetchError("cannot hash " + abs_gguf + " for its torrent: " + lec.message());
        std::string b;
        lt::bencode(std::back_inserter(b), ct.generate());
        write_file(torrent_path, b);
        ti = std::make_shared<lt::torrent_info>(b.data(), int(b.size()), lec);
        if (lec) throw FetchError("the torrent made for " + abs_gguf + " does not load: " + lec.message());
    }
    const Layout lay = *layout_of(*ti, model_id);
    lt::add_torrent_params p = m.base_params();
    p.ti = ti;
    p.save_path = mdir + "/files";
    p.renamed_files[lay.gguf] = abs_gguf;
    p.renamed_files[lay.manifest] = fs::absolute(manifest_path).string();
    p.flags |= lt::torrent_flags::seed_mode;  // complete: each piece is hashed when first asked for
    if (!on_dht) p.flags |= lt::torrent_flags::disable_dht;
    auto t = m.add(model_id, std::move(p));
    t->layout = lay;
    t->gguf = abs_gguf;
    return id_of(ti->info_hashes());
}

std::string Weights::open(const net::Key32& model_id, const TorrentId& tid, const std::vector<std::string>& peers,
                          std::chrono::seconds timeout, const WeightsProgress& progress) {
    Impl& m = *impl_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::string mdir = m.model_dir(model_id), torrent_path = mdir + "/torrent";
    auto t = m.find(model_id);
    if (t && !t->fetched) return t->gguf;  // a complete local file
    if (!t) {
        std::error_code ec;
        fs::create_directories(mdir + "/files", ec);
        if (ec) throw FetchError("cannot create " + mdir + ": " + ec.message());
        lt::add_torrent_params p = m.base_params();
        p.save_path = mdir + "/files";
        // Nothing is downloaded until the pieces we want are chosen (after the metadata).
        p.flags |= lt::torrent_flags::default_dont_download | lt::torrent_flags::upload_mode;
        // A fetch begun earlier (maybe killed): its torrent, so the pieces on
        // disk are checked and kept; else the info-hashes alone (metadata from peers).
        if (fs::exists(torrent_path)) {
            lt::error_code lec;
            const std::string b = read_file(torrent_path, 256ull << 20);
            auto ti = std::make_shared<lt::torrent_info>(b.data(), int(b.size()), lec);
            if (!lec && id_of(ti->info_hashes()) == tid) {
                if (const auto lay = layout_of(*ti, model_id)) {
                    p.ti = ti;  // the GGUF's priority is not 0, so its pieces are checked in the file itself
                    p.file_priorities.assign(size_t(ti->num_files()), lt::dont_download);
                    p.file_priorities[size_t(static_cast<int>(lay->gguf))] = lt::low_priority;
                    p.file_priorities[size_t(static_cast<int>(lay->manifest))] = lt::low_priority;
                }
            }
        }
        if (!p.ti) p.info_hashes = to_lt(tid);
        t = m.add(model_id, std::move(p));
        t->fetched = true;
    }
    t->connect(endpoints(peers));
    m.wait(*t, deadline, "the torrent's metadata", [&] {
        const auto st = t->h.status();
        return st.has_metadata && st.state != lt::torrent_status::checking_files &&
               st.state != lt::torrent_status::checking_resume_data;
    }, progress);
    const auto ti = t->h.torrent_file();
    const auto lay = layout_of(*ti, model_id);
    if (!lay) {
        m.remove(t);
        throw FetchError("torrent " + tid.hex().substr(0, 16) + " is not laid out as model " + hex_id(model_id).substr(0, 16));
    }
    t->layout = *lay;
    t->had_at_open = Impl::have_bytes(t->h.status(lt::torrent_handle::query_pieces), *ti);
    if (!fs::exists(torrent_path)) {  // the info dict alone is a valid .torrent for the restart
        const auto info = ti->info_section();
        write_file(torrent_path, "d4:info" + std::string(info.data(), info.size()) + "e");
    }
    const std::string base = mdir + "/files/";
    t->gguf = ti->files().file_path(lay->gguf, base);
    const std::string mpath = ti->files().file_path(lay->manifest, base);

    // The GGUF gets a non-zero file priority (libtorrent keeps the pieces of a
    // priority-0 file in a side "part file", not in the file), then every piece
    // priority 0 until fetch() wants it. Upload mode holds requests off meanwhile.
    // A file priority takes effect asynchronously (through the disk thread) and
    // then resets the piece priorities: wait for it before choosing pieces.
    const size_t gi = size_t(static_cast<int>(lay->gguf)), mi = size_t(static_cast<int>(lay->manifest));
    std::vector<lt::download_priority_t> files(size_t(ti->num_files()), lt::dont_download);
    files[gi] = files[mi] = lt::low_priority;
    t->h.prioritize_files(files);
    m.wait(*t, deadline, "the file priorities", [&] { return t->h.get_file_priorities() == files; }, nullptr);
    std::vector<lt::download_priority_t> pieces(size_t(ti->num_pieces()), lt::dont_download);
    for (lt::piece_index_t p : t->wanted) pieces[size_t(static_cast<int>(p))] = kWant;
    // The manifest first: it must stand for the model id, or this torrent is not the model.
    const int64_t msize = ti->files().file_size(lay->manifest);
    if (msize > 0) {
        const int first = static_cast<int>(ti->map_file(lay->manifest, 0, 1).piece);
        const int last = static_cast<int>(ti->map_file(lay->manifest, msize - 1, 1).piece);
        for (int p = first; p <= last; ++p) pieces[size_t(p)] = kWant;
    }
    t->h.prioritize_pieces(pieces);
    t->h.unset_flags(lt::torrent_flags::upload_mode);
    m.wait(*t, deadline, "the manifest", [&] {
        std::vector<int64_t> got;
        t->h.file_progress(got, lt::torrent_handle::piece_granularity);
        return got.size() > size_t(static_cast<int>(lay->manifest)) && got[size_t(static_cast<int>(lay->manifest))] >= msize;
    }, progress);
    model::WeightsManifest manifest;
    try {
        manifest = model::parse_manifest(read_file(mpath, kMaxManifest));
    } catch (const std::exception& e) {
        m.remove(t);
        throw FetchError("torrent " + tid.hex().substr(0, 16) + " carries a bad manifest: " + e.what());
    }
    if (engine::model_id(manifest.digests) != model_id ||
        manifest.file_size != uint64_t(ti->files().file_size(lay->gguf)) || manifest.header_size > manifest.file_size) {
        m.remove(t);
        throw FetchError("torrent " + tid.hex().substr(0, 16) + " does not hold model " + hex_id(model_id).substr(0, 16));
    }
    // Then the GGUF header, which must match the manifest's digest.
    m.want_range(*t, *ti, 0, manifest.header_size);
    m.wait(*t, deadline, "the GGUF header", [&] {
        return m.has_wanted(*t);
    }, progress);
    {
        std::error_code ec;
        if (fs::file_size(t->gguf, ec) < manifest.file_size) fs::resize_file(t->gguf, manifest.file_size, ec);
        if (ec) throw FetchError("cannot size " + t->gguf + ": " + ec.message());
        const std::string head = read_prefix(t->gguf, manifest.header_size);
        if (model::digest_bytes(head.data(), head.size()) != manifest.digests.header) {
            m.remove(t);
            throw FetchError("the GGUF header in torrent " + tid.hex().substr(0, 16) + " is not the manifest's");
        }
    }
    model::write_partial_manifest(t->gguf, manifest);
    return t->gguf;
}

void Weights::fetch(const net::Key32& model_id, const std::vector<std::string>& tensors, std::chrono::seconds timeout,
                    const WeightsProgress& progress) {
    Impl& m = *impl_;
    auto t = m.need(model_id);
    if (!t->fetched) return;  // a complete local file: nothing to fetch
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto state = model::read_partial(t->gguf);
    if (!state) throw FetchError(t->gguf + " has no manifest: open() it first");
    const auto ti = t->h.torrent_file();
    std::vector<std::string> todo;
    {
        const auto file = model::GgufFile::open(t->gguf);
        for (const auto& name : tensors) {
            if (state->verified.count(name)) continue;
            const model::TensorInfo* info = file->tensor(name);
            if (!info) throw FetchError("model " + hex_id(model_id).substr(0, 16) + " has no tensor " + name);
            m.want_range(*t, *ti, info->offset, info->nbytes);  // offset: absolute in the file
            todo.push_back(name);
        }
    }
    if (todo.empty()) return;
    t->connect({});
    m.wait(*t, deadline, std::to_string(todo.size()) + " tensors", [&] {
        return m.has_wanted(*t);
    }, progress);
    // Every piece passed its hash; the tensors must also be the manifest's.
    std::vector<std::string> bad;
    for (int attempt = 0; attempt < 6; ++attempt) {
        const auto file = model::GgufFile::open(t->gguf);
        bad = model::verify_tensors(*file, state->manifest, bad.empty() ? todo : bad);
        if (bad.empty()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a write may still be on its way to the file
    }
    throw FetchError("tensor " + bad.front() + " of " + t->gguf + " does not match the model's digest (" +
                     std::to_string(bad.size()) + " tensors failed)");
}

}  // namespace llmn::swarm
