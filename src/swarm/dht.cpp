// With dht_self.cpp, the only files that include libtorrent (through dht_impl.h). See dht.h for the contract.
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
#include "swarm/dht_impl.h"

#include "net/swarm_key.h"

namespace llmn::swarm {
namespace {

constexpr auto kQuiet = std::chrono::milliseconds(300);     // peers(): replies gone quiet
constexpr auto kListenWait = std::chrono::seconds(5);       // constructor: socket bound
constexpr auto kStatsWait = std::chrono::seconds(1);        // routing_table_size()
constexpr auto kJoinPoll = std::chrono::milliseconds(100);  // routing-table polls until joined
constexpr std::chrono::milliseconds kFirstRetry{250}, kMaxRetry{8000};  // peers(): lookups that found nothing
constexpr size_t kMaxItemValue = 990;                       // bencoded "990:" + value <= 1000

lt::sha1_hash to_sha1(const std::array<uint8_t, 20>& h) { return lt::sha1_hash(reinterpret_cast<const char*>(h.data())); }

std::array<char, 32> to_chars(const net::Key32& k) {
    std::array<char, 32> out;
    std::memcpy(out.data(), k.data(), 32);
    return out;
}

std::string key_string(const net::Key32& k) { return std::string(reinterpret_cast<const char*>(k.data()), k.size()); }

uint64_t unix_now() {
    return uint64_t(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
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

}  // namespace


// A reply with values (even only ours) came from a storing node: wait for quiet, not retries.
void Dht::Impl::add_found(const lt::sha1_hash& ih, const std::vector<lt::tcp::endpoint>& eps) {
    if (eps.empty()) return;
    for (auto& q : peer_queries) {
        if (q->info_hash != ih) continue;
        for (const auto& ep : eps)
            if (!is_own(ep)) q->found.insert(ep);
        ++q->replies;
        q->last_reply = Clock::now();
    }
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
    const std::string listen_host = m.cfg.listen.substr(0, m.cfg.listen.rfind(':'));
    m.wildcard_listen = listen_host == "0.0.0.0" || listen_host == "[::]";
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
                                                  lt::alert_category::error | lt::alert_category::port_mapping);
    if (m.cfg.standalone && !bootstrap.empty())
        throw std::runtime_error("dht: a standalone node takes no bootstrap nodes (got " + bootstrap + ")");
    if (!bootstrap.empty() || m.cfg.standalone) sp.set_str(lt::settings_pack::dht_bootstrap_nodes, "");  // no routers: see run()
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
    std::unique_lock lk(mu);
    stop = true;
    lk.unlock();
    cv.notify_all();
    if (loop.joinable()) loop.join();
    ses.reset();  // blocks until libtorrent's thread has stopped
}

void Dht::Impl::run() {
    auto next_announce = Clock::now() + cfg.reannounce;
    auto next_publish = Clock::now() + cfg.republish;
    auto next_stats = Clock::now(), next_ping = Clock::now(), next_reopen = Clock::now() + std::chrono::seconds(2);
    for (;;) {
        if (std::lock_guard lk(mu); stop) return;
        ses->wait_for_alert(std::chrono::milliseconds(100));
        std::vector<lt::alert*> alerts;
        ses->pop_alerts(&alerts);
        for (lt::alert* a : alerts) handle(a);

        auto now = Clock::now();
        if (now >= next_stats) {  // keeps routing_table_size() and joined() fresh
            ses->post_dht_stats();
            std::lock_guard lk(mu);
            next_stats = now + (joined() ? std::chrono::milliseconds(1000) : kJoinPoll);
        }
        // Bootstrap entries are ordinary nodes: pinged, kept in the table, told
        // about us. libtorrent never tables a router and asks one only while a
        // lookup starts from under 3 nodes: a seed holding the announces went
        // unasked once tables held dead clients (bench/dht_lookups.sh). Pinged
        // again each second while the table is empty: a seed may start after us.
        if (std::lock_guard lk(mu); routing_nodes == 0 && now >= next_ping) {
            next_ping = now + std::chrono::seconds(1);
            for (const auto& b : cfg.bootstrap)
                ses->add_dht_node({b.substr(0, b.rfind(':')), std::stoi(b.substr(b.rfind(':') + 1))});
        }
        // libtorrent expands an unspecified listen address into one socket per
        // interface address once, at start: in a network namespace made a moment
        // before (or on a machine whose network comes up late) it found only
        // loopback and stayed deaf on the real interfaces. Enumerate again.
        // Bounded: a machine with loopback only keeps what it has after 20 s.
        if (std::lock_guard lk(mu); wildcard_listen && !listening_beyond_loopback && reopens < 10 && now >= next_reopen) {
            next_reopen = now + std::chrono::seconds(2);
            ++reopens;
            ses->reopen_network_sockets();
        }
        // Announces and puts made while the table was empty or small reached
        // few of the nodes closest to the key: repeat them when the first
        // node arrives and each time the table doubles.
        if (std::lock_guard lk(mu); routing_nodes > 0 && routing_nodes >= 2 * nodes_at_last_push) {
            nodes_at_last_push = routing_nodes;
            next_announce = next_publish = now;
        }
        // A first announce can miss (seen behind NAT: the storing node had it
        // only after a later one): repeat a new one after 1, 2 and 4 s.
        if (std::lock_guard lk(mu); early_announces > 0 && now >= next_early) {
            next_announce = now;
            next_early = now + std::chrono::seconds(1 << (3 - early_announces--));
        }
        {
            std::vector<Announcement> due;
            {
                std::lock_guard lk(mu);
                for (auto& [model, a] : announcements)
                    if (a.background && !a.sent && now >= a.due) a.sent = true, due.push_back(a);
            }
            for (const auto& a : due) {
                ses->dht_announce(a.info_hash, a.port);
                store_self(a);
            }
        }
        if (now >= next_announce) {
            next_announce = now + cfg.reannounce;
            std::vector<Announcement> todo;
            {
                std::lock_guard lk(mu);
                for (const auto& [model, a] : announcements)
                    if (!a.background || a.sent) todo.push_back(a);
            }
            for (const auto& a : todo) {
                ses->dht_announce(a.info_hash, a.port);
                store_self(a);
            }
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
        add_found(r->info_hash, eps);
    } else if (auto* e = lt::alert_cast<lt::external_ip_alert>(a)) {
        // Voted by DHT replies (BEP 42) and the router; never loopback or private.
        std::lock_guard lk(mu);
        reach.external_ip = e->external_address.to_string();
        own_ips.insert(e->external_address);
        cv.notify_all();
    } else if (auto* pm = lt::alert_cast<lt::portmap_alert>(a)) {
        std::lock_guard lk(mu);
        // libtorrent maps its listen ports through the same mappers: only our indices count.
        if (pm->map_protocol != lt::portmap_protocol::tcp || !our_mapping(pm->mapping)) return;
        reach.mapped_port = uint16_t(pm->external_port);
        reach.mapped_by = pm->map_transport == lt::portmap_transport::natpmp ? "NAT-PMP" : "UPnP";
        cv.notify_all();
    } else if (auto* pe = lt::alert_cast<lt::portmap_error_alert>(a)) {
        std::lock_guard lk(mu);
        if (!our_mapping(pe->mapping)) return;
        reach.mapping_error = std::string(pe->map_transport == lt::portmap_transport::natpmp ? "NAT-PMP: " : "UPnP: ") +
                              pe->error.message();
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
        std::lock_guard lk(mu);
        lt::address ip = l->address;
        own_ips.insert(ip);
        if (!ip.is_loopback()) listening_beyond_loopback = true;
        if (ip.is_unspecified() || ip.is_loopback()) own_ips.insert({lt::address_v4::loopback(), lt::address_v6::loopback()});
        if (l->socket_type == lt::socket_type_t::utp) {  // the UDP socket (uTP and DHT)
            udp_port = l->port;
            if (ip.is_unspecified())
                ip = ip.is_v6() ? lt::address(lt::address_v6::loopback()) : lt::address(lt::address_v4::loopback());
            self = lt::udp::endpoint(ip, l->port);
            cv.notify_all();
        }
    } else if (auto* f = lt::alert_cast<lt::listen_failed_alert>(a)) {
        std::lock_guard lk(mu);
        listen_error = f->message();
        cv.notify_all();
    } else if (lt::alert_cast<lt::hash_failed_alert>(a) || lt::alert_cast<lt::peer_ban_alert>(a)) {
        std::lock_guard lk(mu);
        if (torrent_hook) torrent_hook(a);
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

void Dht::announce(const net::Key32& model_id, uint16_t serving_port, const std::string& reachable_ip) {
    Impl& m = *impl_;
    lt::sha1_hash ih = to_sha1(swarm_hash(model_id, m.cfg.swarm_key));
    const Announcement a{ih, serving_port, reachable_ip};
    {
        std::lock_guard lk(m.mu);
        m.announcements[model_id] = a;
        m.own_ports.insert(serving_port);
    }
    m.ses->dht_announce(ih, serving_port);
    m.store_self(a);
    {
        std::lock_guard lk(m.mu);
        m.early_announces = 3;
        m.next_early = Clock::now() + std::chrono::seconds(1);
    }
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

void Dht::announce_later(const net::Key32& key, uint16_t serving_port, const std::string& reachable_ip,
                         std::chrono::milliseconds delay) {
    Impl& m = *impl_;
    Announcement a{to_sha1(swarm_hash(key, m.cfg.swarm_key)), serving_port, reachable_ip};
    a.background = true;
    a.due = Clock::now() + delay;
    std::lock_guard lk(m.mu);
    auto it = m.announcements.find(key);
    if (it != m.announcements.end() && it->second.background && it->second.port == serving_port &&
        it->second.self_ip == reachable_ip)
        return;  // already announced (or due): keep its schedule
    m.announcements[key] = a;
    m.own_ports.insert(serving_port);
}

void Dht::withdraw(const net::Key32& model_id) {
    // The LSD torrent stays: it only tells LAN peers where our DHT node is.
    std::lock_guard lk(impl_->mu);
    impl_->announcements.erase(model_id);
}

std::vector<std::string> Dht::peers(const net::Key32& model_id, std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    const auto deadline = Clock::now() + timeout;
    auto q = std::make_shared<PeerQuery>();
    q->info_hash = to_sha1(swarm_hash(model_id, m.cfg.swarm_key));
    m.join_lan(model_id, q->info_hash);
    std::unique_lock lk(m.mu);
    // Before libtorrent has started its DHT, dht_get_peers is dropped; with
    // an empty table the lookup ends at once with nothing.
    m.cv.wait_until(lk, deadline, [&] { return m.joined() || m.stop; });
    m.peer_queries.push_back(q);
    auto retry = kFirstRetry;
    auto next_try = Clock::now();
    for (;;) {
        const auto now = Clock::now();
        if (now >= deadline || m.stop) break;
        if (q->replies > 0) {
            if (now >= q->last_reply + kQuiet) break;
            m.cv.wait_until(lk, std::min(deadline, q->last_reply + kQuiet));
        } else if (now >= next_try) {
            // Nothing yet: the table lacked the storing nodes, or the announce had not
            // landed. A timer, not the lookup's end: dead nodes keep one open 15 s.
            lk.unlock();
            m.ses->dht_get_peers(q->info_hash);
            m.ask_self(q->info_hash);
            lk.lock();
            next_try = now + retry;
            retry = std::min<std::chrono::milliseconds>(2 * retry, kMaxRetry);
        } else {
            m.cv.wait_until(lk, std::min(deadline, next_try));
        }
    }
    m.peer_queries.remove(q);
    std::set<std::string> out;
    for (const auto& ep : q->found) {  // is_own again: an external IP may have come since
        const std::string ip = ep.address().to_string();
        if (!m.is_own(ep)) out.insert((ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(ep.port()));
    }
    return {out.begin(), out.end()};
}

bool Dht::wait_bootstrapped(std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    std::unique_lock lk(m.mu);
    return m.cv.wait_for(lk, timeout, [&] { return m.joined() || m.stop; }) && !m.stop;
}

void Dht::map_port(uint16_t local_tcp_port) {
    Impl& m = *impl_;
    if (!m.cfg.port_mapping) return;
    // mu is held across add_port_mapping so that the loop cannot handle the
    // mapping's alert before we know its index; libtorrent never takes mu.
    std::lock_guard lk(m.mu);
    if (local_tcp_port == m.mapped_local) return;
    for (lt::port_mapping_t h : m.mappings) m.ses->delete_port_mapping(h);
    m.mappings = m.ses->add_port_mapping(lt::portmap_protocol::tcp, local_tcp_port, local_tcp_port);
    m.mapped_local = local_tcp_port;
    // libtorrent runs no mapper on loopback or local-network listen sockets.
    m.reach = {m.reach.external_ip, 0, "", m.mappings.empty() ? "no UPnP / NAT-PMP router on the listen interfaces" : ""};
    m.cv.notify_all();
}

Dht::Reach Dht::reach() const {
    std::lock_guard lk(impl_->mu);
    return impl_->reach;
}

Dht::Reach Dht::wait_reach(std::chrono::milliseconds timeout, bool want_mapping) {
    Impl& m = *impl_;
    std::unique_lock lk(m.mu);
    const auto mapped = [&] { return !want_mapping || m.mapped_local == 0 || m.reach.mapped_port || !m.reach.mapping_error.empty(); };
    m.cv.wait_for(lk, timeout, [&] { return m.stop || (!m.reach.external_ip.empty() && mapped()); });
    return m.reach;
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
    std::unique_lock lk(m.mu);
    m.item_queries.push_back(q);
    lk.unlock();
    m.ses->dht_get_item(q->key, q->salt);
    lk.lock();
    m.cv.wait_until(lk, deadline, [&] { return q->done || m.stop; });
    m.item_queries.remove(q);
    const std::vector<std::string> values = q->values;
    lk.unlock();
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
