// The only file that includes libtorrent. See dht.h for the contract.
//
// Threads: libtorrent's network thread runs the DHT. `loop_` (one thread per
// Dht) waits for alerts, turns them into results on the query objects below,
// and re-announces / republishes on a timer. Callers block on `cv_` with a
// deadline. `mu_` guards only the query lists, the timers' work lists and a
// few counters: it is the queue boundary between the alert thread and callers.
//
// Keys: libtorrent's ed25519 secret key (64 bytes) is the orlp/ref10
// "expanded" key, SHA-512(seed) clamped, whereas libsodium's 64-byte secret
// key is seed || public key: the layouts differ and are not interchangeable.
// We never convert: the put callback builds the BEP 44 signing string itself
// and signs it with net::Identity::sign (plain Ed25519, which libtorrent's
// ed25519_verify accepts), so the key stays inside net::Identity.
#include "swarm/dht.h"

#include "net/swarm_key.h"

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/bdecode.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/entry.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_flags.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace lt = libtorrent;

namespace llmn::swarm {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kQuiet = std::chrono::milliseconds(300);     // peers(): replies gone quiet
constexpr auto kListenWait = std::chrono::seconds(5);       // constructor: socket bound
constexpr auto kStatsWait = std::chrono::seconds(1);        // routing_table_size()
constexpr size_t kMaxItemValue = 990;                       // bencoded "990:" + value <= 1000

lt::sha1_hash to_sha1(const std::array<uint8_t, 20>& h) {
    return lt::sha1_hash(reinterpret_cast<const char*>(h.data()));
}

std::array<char, 32> to_chars(const net::Key32& k) {
    std::array<char, 32> out;
    std::memcpy(out.data(), k.data(), 32);
    return out;
}

std::string key_string(const net::Key32& k) { return std::string(reinterpret_cast<const char*>(k.data()), k.size()); }

uint64_t unix_now() {
    return uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

// "host:port" with a numeric port in [1, 65535], or throws.
void check_host_port(const std::string& s, const char* what) {
    auto colon = s.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < s.size() && colon + 6 >= s.size();
    if (ok) {
        ok = std::all_of(s.begin() + long(colon) + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
        ok = ok && std::stoul(s.substr(colon + 1)) <= 65535;
    }
    if (!ok) throw std::runtime_error(std::string("dht: ") + what + " \"" + s + "\" is not host:port");
}

// The BEP 44 signing string: the bencoded dict {salt, seq, v} without its
// outer "d" and "e" ("4:salt" part only when there is a salt).
std::string bep44_signing_string(const std::string& salt, int64_t seq, const lt::entry& v) {
    std::string out;
    if (!salt.empty()) out += "4:salt" + std::to_string(salt.size()) + ":" + salt;
    out += "3:seqi" + std::to_string(seq) + "e1:v";
    lt::bencode(std::back_inserter(out), v);
    return out;
}

struct PeerQuery {
    lt::sha1_hash info_hash;
    std::set<std::string> found;
    int replies = 0;
    Clock::time_point last_reply;
};

struct ItemQuery {
    std::array<char, 32> key;
    std::string salt;
    bool done = false;            // the authoritative (last) answer came
    std::vector<std::string> values;  // every string value seen
};

struct Announcement {
    lt::sha1_hash info_hash;
    uint16_t port;
};

struct Publication {
    net::Key32 salt;
    std::string value;
    net::Identity id;
};

}  // namespace

struct Dht::Impl {
    Config cfg;
    std::unique_ptr<lt::session> ses;
    std::string lsd_save_path;

    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    uint16_t udp_port = 0;
    lt::udp::endpoint self;  // our DHT socket, for get_peers on our own storage
    std::list<std::unique_ptr<lt::sha1_hash>> self_queries;  // userdata of those requests
    std::string listen_error;
    size_t routing_nodes = 0;
    size_t nodes_at_last_push = 0;  // routing_nodes when we last re-pushed everything
    uint64_t stats_generation = 0;
    std::list<std::shared_ptr<PeerQuery>> peer_queries;
    std::list<std::shared_ptr<ItemQuery>> item_queries;
    std::map<net::Key32, Announcement> announcements;               // by model id
    std::map<std::pair<net::Key32, net::Key32>, Publication> publications;  // by (node key, model id)
    std::set<net::Key32> lan_models;  // models with an LSD torrent
    std::thread loop;

    void run();
    void shutdown();
    void handle(lt::alert* a);
    void put(const Publication& p);
    void join_lan(const net::Key32& model_id, const lt::sha1_hash& ih);
    void ask_self(const lt::sha1_hash& ih);
    void on_self_reply(const lt::dht_direct_response_alert& d);
};

// A lookup never asks the node that runs it, yet announces are stored on the
// k nodes closest to the key, which can include us: on a 2-node LAN each
// node's entry lives only on the other. So peers() also sends get_peers to
// our own DHT socket and merges the "values" it returns.
void Dht::Impl::ask_self(const lt::sha1_hash& ih) {
    lt::udp::endpoint ep;
    lt::sha1_hash* tag = nullptr;
    {
        std::lock_guard lk(mu);
        if (self.port() == 0) return;
        ep = self;
        self_queries.push_back(std::make_unique<lt::sha1_hash>(ih));
        tag = self_queries.back().get();
    }
    lt::entry e;
    e["q"] = "get_peers";
    e["a"]["info_hash"] = std::string(ih.data(), ih.size());
    ses->dht_direct_request(ep, e, lt::client_data_t(tag));
}

void Dht::Impl::on_self_reply(const lt::dht_direct_response_alert& d) {
    auto* tag = d.userdata.get<lt::sha1_hash>();
    lt::bdecode_node r = d.response();
    std::vector<std::string> found;
    if (r.type() == lt::bdecode_node::dict_t) {
        lt::bdecode_node values = r.dict_find_dict("r").dict_find_list("values");
        for (int i = 0; values && i < values.list_size(); ++i) {
            lt::string_view v = values.list_string_value_at(i);
            if (v.size() != 6) continue;  // compact IPv4 + port
            const auto* b = reinterpret_cast<const uint8_t*>(v.data());
            found.push_back(std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
                            std::to_string(b[3]) + ":" + std::to_string((b[4] << 8) | b[5]));
        }
    }
    std::lock_guard lk(mu);
    auto it = std::find_if(self_queries.begin(), self_queries.end(), [&](auto& p) { return p.get() == tag; });
    if (it == self_queries.end()) return;
    for (auto& q : peer_queries) {
        if (q->info_hash != **it) continue;
        q->found.insert(found.begin(), found.end());
        if (!found.empty()) {
            ++q->replies;
            q->last_reply = Clock::now();
        }
    }
    self_queries.erase(it);
    cv.notify_all();
}

std::array<uint8_t, 20> Dht::swarm_hash(const net::Key32& model_id, const std::optional<net::Key32>& swarm_key) {
    std::string name = "llm-node/v1/" + net::to_hex(model_id.data(), model_id.size());
    if (swarm_key) {
        const net::Key32 d = net::swarm_digest(*swarm_key, net::SwarmKeyUse::dht, "info-hash", model_id.data(), model_id.size());
        name = "llm-node/private/v1/" + net::to_hex(d.data(), d.size());
    }
    lt::sha1_hash h = lt::hasher(name.data(), int(name.size())).final();
    std::array<uint8_t, 20> out;
    std::memcpy(out.data(), h.data(), 20);
    return out;
}

net::Key32 Dht::record_salt(const net::Key32& model_id, const std::optional<net::Key32>& swarm_key) {
    if (!swarm_key) return model_id;
    return net::swarm_digest(*swarm_key, net::SwarmKeyUse::dht, "record-salt", model_id.data(), model_id.size());
}

Dht::Dht(Config config) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.cfg = std::move(config);
    check_host_port(m.cfg.listen, "listen address");
    std::string bootstrap;
    for (const auto& b : m.cfg.bootstrap) {
        check_host_port(b, "bootstrap node");
        bootstrap += (bootstrap.empty() ? "" : ",") + b;
    }

    lt::settings_pack sp;
    sp.set_str(lt::settings_pack::listen_interfaces, m.cfg.listen);
    sp.set_bool(lt::settings_pack::enable_dht, true);
    sp.set_bool(lt::settings_pack::enable_lsd, m.cfg.lan_discovery);
    sp.set_bool(lt::settings_pack::enable_upnp, m.cfg.port_mapping);
    sp.set_bool(lt::settings_pack::enable_natpmp, m.cfg.port_mapping);
    sp.set_int(lt::settings_pack::alert_mask, lt::alert_category::dht | lt::alert_category::dht_operation |
                                                  lt::alert_category::peer | lt::alert_category::status |
                                                  lt::alert_category::error);
    if (m.cfg.standalone && !bootstrap.empty())
        throw std::runtime_error("dht: a standalone node takes no bootstrap nodes (got " + bootstrap + ")");
    if (!bootstrap.empty() || m.cfg.standalone) sp.set_str(lt::settings_pack::dht_bootstrap_nodes, bootstrap);
    sp.set_int(lt::settings_pack::connections_limit, 50);  // only LSD torrents make connections
    if (m.cfg.one_machine) {
        sp.set_bool(lt::settings_pack::dht_restrict_routing_ips, false);
        sp.set_bool(lt::settings_pack::dht_restrict_search_ips, false);
        sp.set_bool(lt::settings_pack::dht_prefer_verified_node_ids, false);
        sp.set_bool(lt::settings_pack::dht_ignore_dark_internet, false);
        sp.set_int(lt::settings_pack::dht_block_ratelimit, 1000000);
        sp.set_int(lt::settings_pack::dht_block_timeout, 0);
        sp.set_int(lt::settings_pack::dht_upload_rate_limit, 10 * 1000 * 1000);
    }
    m.ses = std::make_unique<lt::session>(lt::session_params(std::move(sp)));
    // Bootstrap entries serve twice: as routers (a first lookup through them
    // returns the nodes they know) and as ordinary nodes (pinged, then kept in
    // the routing table, and told about us). Routers alone are never added to
    // the table and do not learn of us, so on a private swarm the seed stays
    // empty and no one finds anyone (seen on 127.0.0.1 with 1 seed + 8 nodes).
    for (const auto& b : m.cfg.bootstrap) {
        auto colon = b.rfind(':');
        m.ses->add_dht_node({b.substr(0, colon), std::stoi(b.substr(colon + 1))});
    }
    m.lsd_save_path = std::filesystem::temp_directory_path().string();
    m.loop = std::thread([&m] { m.run(); });

    std::unique_lock lk(m.mu);
    m.cv.wait_for(lk, kListenWait, [&] { return m.udp_port != 0 || !m.listen_error.empty(); });
    std::string err = m.udp_port != 0 ? "" : m.listen_error.empty() ? "no listen socket after 5 s" : m.listen_error;
    lk.unlock();
    if (!err.empty()) {
        m.shutdown();
        throw std::runtime_error("dht: cannot listen on " + m.cfg.listen + ": " + err);
    }
}

Dht::~Dht() { impl_->shutdown(); }

void Dht::Impl::shutdown() {
    {
        std::lock_guard lk(mu);
        stop = true;
    }
    cv.notify_all();
    if (loop.joinable()) loop.join();
    ses.reset();  // blocks until libtorrent's thread has stopped
}

void Dht::Impl::run() {
    auto next_announce = Clock::now() + cfg.reannounce;
    auto next_publish = Clock::now() + cfg.republish;
    auto next_stats = Clock::now();
    for (;;) {
        {
            std::lock_guard lk(mu);
            if (stop) return;
        }
        ses->wait_for_alert(std::chrono::milliseconds(100));
        std::vector<lt::alert*> alerts;
        ses->pop_alerts(&alerts);
        for (lt::alert* a : alerts) handle(a);

        auto now = Clock::now();
        if (now >= next_stats) {  // keeps routing_table_size() fresh
            ses->post_dht_stats();
            next_stats = now + std::chrono::seconds(1);
        }
        // Announces and puts made while the table was empty or small reached
        // few of the nodes closest to the key: repeat them when the first
        // node arrives and each time the table doubles.
        bool grown = false;
        {
            std::lock_guard lk(mu);
            if (routing_nodes > 0 && routing_nodes >= 2 * nodes_at_last_push) {
                nodes_at_last_push = routing_nodes;
                grown = true;
            }
        }
        if (grown) next_announce = next_publish = now;
        if (now >= next_announce) {
            next_announce = now + cfg.reannounce;
            std::vector<Announcement> todo;
            {
                std::lock_guard lk(mu);
                for (const auto& [model, a] : announcements) todo.push_back(a);
            }
            for (const auto& a : todo) ses->dht_announce(a.info_hash, a.port);
        }
        if (now >= next_publish) {
            next_publish = now + cfg.republish;
            std::vector<Publication> todo;
            {
                std::lock_guard lk(mu);
                for (const auto& [k, p] : publications) todo.push_back(p);
            }
            for (const auto& p : todo) put(p);
        }
    }
}

void Dht::Impl::handle(lt::alert* a) {
    if (auto* r = lt::alert_cast<lt::dht_get_peers_reply_alert>(a)) {
        std::vector<lt::tcp::endpoint> eps = r->peers();
        std::lock_guard lk(mu);
        for (auto& q : peer_queries) {
            if (q->info_hash != r->info_hash) continue;
            for (const auto& ep : eps) {
                std::string addr = ep.address().to_string();
                if (ep.address().is_v6()) addr = "[" + addr + "]";
                q->found.insert(addr + ":" + std::to_string(ep.port()));
            }
            ++q->replies;
            q->last_reply = Clock::now();
        }
        cv.notify_all();
    } else if (auto* d = lt::alert_cast<lt::dht_direct_response_alert>(a)) {
        on_self_reply(*d);
    } else if (auto* it = lt::alert_cast<lt::dht_mutable_item_alert>(a)) {
        std::lock_guard lk(mu);
        for (auto& q : item_queries) {
            if (q->key != it->key || q->salt != it->salt) continue;
            if (it->item.type() == lt::entry::string_t) q->values.push_back(it->item.string());
            if (it->authoritative) q->done = true;
        }
        cv.notify_all();
    } else if (auto* s = lt::alert_cast<lt::dht_stats_alert>(a)) {
        size_t n = 0;
        for (const auto& b : s->routing_table) n += size_t(b.num_nodes);
        std::lock_guard lk(mu);
        routing_nodes = n;
        ++stats_generation;
        cv.notify_all();
    } else if (auto* l = lt::alert_cast<lt::listen_succeeded_alert>(a)) {
        if (l->socket_type == lt::socket_type_t::utp) {  // the UDP socket (uTP and DHT)
            std::lock_guard lk(mu);
            udp_port = l->port;
            lt::address ip = l->address;
            if (ip.is_unspecified())
                ip = ip.is_v6() ? lt::address(lt::address_v6::loopback()) : lt::address(lt::address_v4::loopback());
            self = lt::udp::endpoint(ip, l->port);
            cv.notify_all();
        }
    } else if (auto* f = lt::alert_cast<lt::listen_failed_alert>(a)) {
        std::lock_guard lk(mu);
        listen_error = f->message();
        cv.notify_all();
    } else if (auto* p = lt::alert_cast<lt::lsd_peer_alert>(a)) {
        // LSD gives the peer's libtorrent listen port, which is also its DHT
        // UDP port: join its DHT, and get_peers yields the serving ports.
        ses->add_dht_node({p->endpoint.address().to_string(), int(p->endpoint.port())});
    }
}

void Dht::Impl::put(const Publication& p) {
    std::string value = p.value;
    net::Identity id = p.id;
    ses->dht_put_item(
        to_chars(id.public_key()),
        [value, id](lt::entry& v, std::array<char, 64>& sig, std::int64_t& seq, const std::string& salt) {
            // Runs on libtorrent's thread: no locks, no blocking.
            v = lt::entry(value);
            seq = std::max<std::int64_t>(seq + 1, std::int64_t(unix_now()));
            std::string msg = bep44_signing_string(salt, seq, v);
            net::Sig64 s = id.sign(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
            std::memcpy(sig.data(), s.data(), sig.size());
        },
        key_string(p.salt));
}

uint16_t Dht::port() const {
    std::lock_guard lk(impl_->mu);
    return impl_->udp_port;
}

size_t Dht::routing_table_size() const {
    Impl& m = *impl_;
    std::unique_lock lk(m.mu);
    uint64_t want = m.stats_generation + 1;
    lk.unlock();
    m.ses->post_dht_stats();
    lk.lock();
    m.cv.wait_for(lk, kStatsWait, [&] { return m.stats_generation >= want; });
    return m.routing_nodes;
}

void Dht::announce(const net::Key32& model_id, uint16_t serving_port) {
    Impl& m = *impl_;
    lt::sha1_hash ih = to_sha1(swarm_hash(model_id, m.cfg.swarm_key));
    {
        std::lock_guard lk(m.mu);
        m.announcements[model_id] = Announcement{ih, serving_port};
    }
    m.ses->dht_announce(ih, serving_port);
    m.join_lan(model_id, ih);
}

void Dht::Impl::join_lan(const net::Key32& model_id, const lt::sha1_hash& ih) {
    if (!cfg.lan_discovery) return;
    {
        std::lock_guard lk(mu);
        if (!lan_models.insert(model_id).second) return;
    }
    // A metadata-less torrent on the swarm hash, so that LSD announces it and
    // reports the LAN peers that announce it (lsd_peer_alert).
    lt::add_torrent_params atp;
    atp.info_hashes.v1 = ih;
    atp.save_path = lsd_save_path;
    atp.flags = lt::torrent_flags::upload_mode | lt::torrent_flags::disable_dht | lt::torrent_flags::disable_pex;
    atp.max_connections = 4;
    ses->async_add_torrent(std::move(atp));
}

void Dht::withdraw(const net::Key32& model_id) {
    Impl& m = *impl_;
    {
        std::lock_guard lk(m.mu);
        m.announcements.erase(model_id);
    }
    // The LSD torrent stays: it only tells LAN peers where our DHT node is.
}

std::vector<std::string> Dht::peers(const net::Key32& model_id, std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    auto deadline = Clock::now() + timeout;
    auto q = std::make_shared<PeerQuery>();
    q->info_hash = to_sha1(swarm_hash(model_id, m.cfg.swarm_key));
    {
        std::lock_guard lk(m.mu);
        m.peer_queries.push_back(q);
    }
    m.ses->dht_get_peers(q->info_hash);
    m.ask_self(q->info_hash);
    m.join_lan(model_id, q->info_hash);
    std::unique_lock lk(m.mu);
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline || m.stop) break;
        auto until = deadline;
        if (q->replies > 0) {
            if (now >= q->last_reply + kQuiet) break;
            until = std::min(until, q->last_reply + kQuiet);
        }
        m.cv.wait_until(lk, until);
    }
    m.peer_queries.remove(q);
    return {q->found.begin(), q->found.end()};
}

void Dht::publish(const NodeRecord& record, const net::Identity& id) {
    if (record.node_id != id.public_key())
        throw std::invalid_argument("dht: record of node " + net::to_hex(record.node_id.data(), 32) +
                                    " cannot be published with the key of node " + id.id_hex());
    Publication p{record_salt(record.model_id, impl_->cfg.swarm_key), record.encode(), id};
    {
        std::lock_guard lk(impl_->mu);
        impl_->publications.insert_or_assign({record.node_id, record.model_id}, p);
    }
    impl_->put(p);
}

void Dht::publish_bytes(const net::Key32& salt, std::string value, const net::Identity& id) {
    if (value.size() > kMaxItemValue)
        throw std::invalid_argument("dht: item of " + std::to_string(value.size()) + " bytes, limit " +
                                    std::to_string(kMaxItemValue));
    impl_->put(Publication{salt, std::move(value), id});
}

std::optional<NodeRecord> Dht::fetch(const net::Key32& node_id, const net::Key32& model_id,
                                     std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    auto deadline = Clock::now() + timeout;
    auto q = std::make_shared<ItemQuery>();
    q->key = to_chars(node_id);
    q->salt = key_string(record_salt(model_id, m.cfg.swarm_key));
    {
        std::lock_guard lk(m.mu);
        m.item_queries.push_back(q);
    }
    m.ses->dht_get_item(q->key, q->salt);
    std::vector<std::string> values;
    {
        std::unique_lock lk(m.mu);
        m.cv.wait_until(lk, deadline, [&] { return q->done || m.stop; });
        m.item_queries.remove(q);
        values = q->values;
    }
    // libtorrent has checked the BEP 44 signature; now check the record.
    std::optional<NodeRecord> best;
    uint64_t now = unix_now();
    for (const auto& v : values) {
        NodeRecord r;
        try {
            r = NodeRecord::decode(v);
        } catch (const RecordError&) {
            continue;
        }
        if (r.node_id != node_id || r.model_id != model_id || !r.verify() || r.expired(now)) continue;
        if (!best || r.expires_unix > best->expires_unix) best = std::move(r);
    }
    return best;
}

}  // namespace llmn::swarm
