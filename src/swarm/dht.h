// Swarm discovery on the BitTorrent Mainline DHT (libtorrent, DHT-only
// session). The swarm of a model is the info-hash
// SHA-1("llm-node/v1/" + hex model id): nodes announce it with their serving
// port (BEP 5) and anyone lists them with peers(). A node's signed NodeRecord
// is a BEP 44 mutable item under its Ed25519 key with the model id as salt.
//
// Every call is synchronous, thread-safe and bounded by its timeout; nothing
// calls user code. libtorrent runs on its own network thread; one thread of
// this object drains its alerts and re-announces, and hands results to the
// waiting callers through a mutex + condvar (the queue boundary). Only
// dht.cpp includes libtorrent (it brings Boost.Asio).
//
// LAN discovery (BEP 14): libtorrent's LSD is per torrent, so announce() and
// peers() also add a metadata-less torrent for the swarm info-hash (upload
// mode, no DHT or PEX of its own). LSD then multicasts "this info-hash at <ip>:<dht port>"
// (the session's listen port, not the serving port); on hearing one, we add
// that endpoint as a DHT node, so LAN nodes find each other's serving ports
// through get_peers with no bootstrap node at all.
//
// Private swarms (Config::swarm_key): the info-hash is
// SHA-1("llm-node/private/v1/" + hex keyed BLAKE2b(model id)) and the record
// salt a keyed BLAKE2b of the model id, both under the key's dht subkey
// (net/swarm_key.h), so the swarm cannot be found, nor its records fetched,
// without the key, and the key itself is never published.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/messages.h"
#include "swarm/node_record.h"

namespace llmn::swarm {

class Dht {
public:
    struct Config {
        // "ip:port" for the DHT's UDP socket (and libtorrent's TCP listener).
        std::string listen = "127.0.0.1:0";
        // "host:port" DHT nodes to join through, kept as ordinary nodes (a seed
        // stores announces, so lookups must reach it); empty = libtorrent's
        // public default routers (router.bittorrent.com, dht.transmissionbt.com, ...).
        std::vector<std::string> bootstrap;
        // Join nobody (a seed, or a LAN-only node found through LSD); then
        // `bootstrap` must be empty.
        bool standalone = false;
        bool lan_discovery = true;  // LSD (BEP 14) multicast on the LAN
        bool port_mapping = true;   // UPnP + NAT-PMP on the home router
        // Settings for many nodes on one IP (tests): the per-IP routing and
        // rate-limit rules off (DEPENDENCIES.md). Never on the internet.
        bool one_machine = false;
        // How often announce() and publish() are repeated (the DHT forgets
        // peers after ~30 min and items after ~2 h).
        std::chrono::seconds reannounce{60};
        std::chrono::seconds republish{600};
        // A private swarm's key: announce, peers, publish and fetch use the
        // keyed info-hash and salt. Unset: the public swarm of the model.
        std::optional<net::Key32> swarm_key{};
    };

    // Starts the session; throws std::runtime_error when `listen` or a
    // bootstrap entry is malformed or the socket cannot be opened.
    explicit Dht(Config config);
    ~Dht();
    Dht(const Dht&) = delete;
    Dht& operator=(const Dht&) = delete;

    // The bound UDP port of the DHT (useful with port 0).
    uint16_t port() const;
    // Nodes in the routing table (waits up to 1 s for libtorrent's count).
    size_t routing_table_size() const;

    // Announces `serving_port` on the model's swarm now and every
    // `reannounce` until the Dht is destroyed (a second call replaces the port).
    // With `reachable_ip` (the IP others reach this node at), the announce is
    // also kept in our own DHT storage, so a swarm whose other DHT nodes are
    // few or unreachable (a bootstrap node serving it) still finds us.
    void announce(const net::Key32& model_id, uint16_t serving_port, const std::string& reachable_ip = "");
    // The same for a key that can wait (the swarm's catalog): sent once after
    // `delay`, then with the others, never in the start-up burst (a DHT node
    // blocks an IP that sends it more than 5 packets a second).
    void announce_later(const net::Key32& key, uint16_t serving_port, const std::string& reachable_ip,
                        std::chrono::milliseconds delay);
    // Stops re-announcing (the DHT drops the entry when it expires); LAN
    // discovery of our DHT node goes on.
    void withdraw(const net::Key32& model_id);
    // "ip:port" of nodes announced on the model's swarm, never our own: an
    // entry whose port we announced (now or earlier) and whose IP is ours (a
    // listen address: libtorrent expands 0.0.0.0 into every interface's;
    // loopback with those; an external IP we learnt) is left out. Waits for
    // wait_bootstrapped() first, then looks up; while nothing has come back
    // it looks again after 250 ms, 500 ms, 1 s, 2 s, 4 s, then every 8 s.
    // Returns once replies have gone quiet for 300 ms after the first one,
    // or at the timeout (which the wait counts against).
    std::vector<std::string> peers(const net::Key32& model_id, std::chrono::milliseconds timeout);
    // Waits until the DHT has joined: a node answered and sits in the routing
    // table (a standalone DHT at once). False at the timeout, e.g. when no
    // bootstrap node answers.
    bool wait_bootstrapped(std::chrono::milliseconds timeout);

    // What this host learnt about how others reach it.
    struct Reach {
        std::string external_ip;    // our address as others see it (DHT votes, BEP 42, or the router); empty: unknown
        uint16_t mapped_port = 0;   // external TCP port the router forwards to map_port()'s port; 0: none (yet)
        std::string mapped_by;      // "UPnP" or "NAT-PMP"
        std::string mapping_error;  // the last failure for our mapping (with mapped_port set: the other protocol's)
    };
    // Asks the home router (UPnP and NAT-PMP) to forward TCP `local_tcp_port`
    // to us on the same external port, replacing an earlier map_port's
    // mapping. A no-op when Config::port_mapping is off. Results show in reach().
    void map_port(uint16_t local_tcp_port);
    Reach reach() const;
    // Waits until the external IP is known and, with `want_mapping`, port
    // mapping on and map_port() called, until the router answered (mapped or
    // failed), or until the timeout; returns reach().
    Reach wait_reach(std::chrono::milliseconds timeout, bool want_mapping);

    // Publishes `record` exactly as given (sign it first with record.sign(id))
    // as id's BEP 44 item, salt = record.model_id, and republishes it
    // periodically. Throws std::invalid_argument when record.node_id is not
    // id's key. The BEP 44 signature is made with libsodium through
    // Identity::sign, so no secret key leaves net::Identity.
    void publish(const NodeRecord& record, const net::Identity& id);
    // Raw BEP 44 put of `value` (at most 990 bytes) under id's key with salt
    // `salt`, once. For tests and tools; fetch() still checks what it reads.
    void publish_bytes(const net::Key32& salt, std::string value, const net::Identity& id);
    // The record that `node_id` published for `model_id`, or nullopt when
    // none arrives in time or it does not decode, verify, name that node and
    // model, or it has expired.
    std::optional<NodeRecord> fetch(const net::Key32& node_id, const net::Key32& model_id,
                                    std::chrono::milliseconds timeout);

    // The swarm info-hash of a model (20 bytes), for logs and tests; with a
    // key, the private swarm's.
    static std::array<uint8_t, 20> swarm_hash(const net::Key32& model_id, const std::optional<net::Key32>& swarm_key = {});
    // The BEP 44 salt of a node's record: the model id, or with a key its keyed digest.
    static net::Key32 record_salt(const net::Key32& model_id, const std::optional<net::Key32>& swarm_key = {});

private:
    friend class Weights;  // shares the libtorrent session (swarm/weights.h)
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace llmn::swarm
