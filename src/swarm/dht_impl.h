// Internal to src/swarm/dht*.cpp (it brings libtorrent and Boost.Asio): the
// state of a Dht, shared by dht.cpp (session, alerts, announces, lookups,
// items) and dht_self.cpp (what a node asks of its own DHT socket).
#pragma once
#include "swarm/dht.h"

#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

namespace llmn::swarm::detail {

using Clock = std::chrono::steady_clock;

struct PeerQuery {
    lt::sha1_hash info_hash;
    std::set<lt::tcp::endpoint> found;  // without our own entries
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
    std::string self_ip;  // also stored in our own DHT storage, as from this IP ("": no)
    // A background announce (Dht::announce_later) is first sent at `due`, alone,
    // then with the others every `reannounce`.
    bool background = false;
    bool sent = false;
    std::chrono::steady_clock::time_point due{};
};

struct Publication {
    net::Key32 salt;
    std::string value;
    net::Identity id;
};

// A request to our own DHT socket: what to do with its answer.
struct SelfRequest {
    enum class Kind { lookup, store } kind = Kind::lookup;
    lt::sha1_hash info_hash;
    uint16_t port = 0;          // store: the serving port to announce
    lt::udp::endpoint to;       // store: our socket at the address others reach it by
};

}  // namespace llmn::swarm::detail

namespace llmn::swarm {

using detail::Announcement;
using detail::Clock;
using detail::ItemQuery;
using detail::PeerQuery;
using detail::Publication;
using detail::SelfRequest;

struct Dht::Impl {
    Config cfg;
    std::unique_ptr<lt::session> ses;
    std::string lsd_save_path;

    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    uint16_t udp_port = 0;
    lt::udp::endpoint self;  // our DHT socket, for get_peers on our own storage
    std::list<std::unique_ptr<SelfRequest>> self_queries;  // userdata of requests to our own socket
    std::string listen_error;
    size_t routing_nodes = 0;
    size_t nodes_at_last_push = 0;  // routing_nodes when we last re-pushed everything
    uint64_t stats_generation = 0;
    std::list<std::shared_ptr<PeerQuery>> peer_queries;
    std::list<std::shared_ptr<ItemQuery>> item_queries;
    std::map<net::Key32, Announcement> announcements;               // by model id
    int early_announces = 0;             // repeats of a new announce still to come
    bool wildcard_listen = false;        // Config::listen is 0.0.0.0 or [::]
    bool listening_beyond_loopback = false;  // a listen socket on a real interface came up
    int reopens = 0;                     // re-enumerations of the interfaces so far
    Clock::time_point next_early{};
    std::map<std::pair<net::Key32, net::Key32>, Publication> publications;  // by (node key, model id)
    std::set<net::Key32> lan_models;  // models with an LSD torrent
    // Ours, to leave out of peers(): every port we ever announced (the DHT
    // keeps an entry ~30 min after we stop) and every IP we are known by.
    std::set<uint16_t> own_ports;
    std::set<lt::address> own_ips;
    Reach reach;
    std::vector<lt::port_mapping_t> mappings;  // map_port()'s, per UPnP / NAT-PMP mapper
    uint16_t mapped_local = 0;
    std::thread loop;
    // Weights' alert handler (hash failures, bans), called under mu on the alert thread.
    std::function<void(lt::alert*)> torrent_hook;

    void run();
    void shutdown();
    void handle(lt::alert* a);
    void put(const Publication& p);
    void join_lan(const net::Key32& model_id, const lt::sha1_hash& ih);
    void ask_self(const lt::sha1_hash& ih);
    // Stores `a` directly on the bootstrap nodes and in our own DHT storage as
    // seen from a.self_ip (dht_self.cpp).
    void store_self(const Announcement& a);
    void on_self_reply(const lt::dht_direct_response_alert& d);
    void send_self(std::unique_ptr<SelfRequest> req, const lt::udp::endpoint& to, lt::entry e);
    // Under mu:
    // A node answered. Not dht_bootstrap_alert: without routers it comes at
    // once, and it comes after a bootstrap that reached no one too.
    bool joined() const { return cfg.standalone || routing_nodes > 0; }
    bool is_own(const lt::tcp::endpoint& ep) const { return own_ports.count(ep.port()) && own_ips.count(ep.address()); }
    bool our_mapping(lt::port_mapping_t m) const { return std::find(mappings.begin(), mappings.end(), m) != mappings.end(); }
    void add_found(const lt::sha1_hash& ih, const std::vector<lt::tcp::endpoint>& eps);
};

}  // namespace llmn::swarm
