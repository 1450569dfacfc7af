// Joining a model with nothing but its id: find the nodes of its swarm on the
// DHT, read the weights torrent from their signed NODE_INFO, and open it
// (manifest and header checked against the id). Also the swarm's catalog:
// every node announces itself under one well-known key too, so
// `llm-node models --swarm` can list what the swarm serves.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/probe.h"
#include "swarm/weights.h"

namespace llmn::swarm {

// The catalog's key: what every node announces besides its model's id.
net::Key32 catalog_id();

// A 64-hex-digit model id, or nullopt.
std::optional<net::Key32> parse_model_id(const std::string& s);

// The BitTorrent endpoint ("ip:port") of a probed node that seeds, or "" (none,
// or reached through a relay only).
std::string torrent_peer(const net::ProbedNode& n);

// Opens `model_id` from the swarm: looks up its nodes (retrying until
// `timeout`), and tries the torrents they name, the one most nodes name first,
// until one checks. Returns the local GGUF path (partial: fetch() its
// tensors next). Throws FetchError saying what was found when none works.
std::string open_from_swarm(Dht& dht, Weights& weights, const net::Key32& model_id,
                            std::optional<net::Key32> swarm_key, std::chrono::seconds timeout,
                            const WeightsProgress& progress = {});

}  // namespace llmn::swarm
