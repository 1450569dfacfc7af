// Flags shared by the commands that join the swarm (start, generate --swarm),
// and by the commands that choose where a session's layers run.
#pragma once
#include <optional>
#include <vector>

#include "cli/args.h"
#include "client/session_source.h"
#include "engine/model.h"
#include "net/swarm_key.h"
#include "swarm/dht.h"

namespace llmn::cli {

// --bootstrap, --dht-listen, --no-lan, --no-upnp, --one-machine, --standalone, --swarm-key.
std::vector<Flag> swarm_flags();
swarm::Dht::Config dht_config(const Args& args);
// The key of --swarm-key FILE, or nullopt; throws std::runtime_error for a bad file.
std::optional<net::SwarmKey> swarm_key(const Args& args);

// --route, --nodes, --swarm / --local, --wire-dtype, --local-layers, plus swarm_flags().
std::vector<Flag> session_flags(bool swarm_by_default);
// Local unless --route / --nodes / --swarm; with swarm_by_default (chat, api)
// the swarm unless --local. The DHT is kept alive by the returned source.
client::SessionSource session_source(const Args& args, const engine::Model& model, bool swarm_by_default);

}  // namespace llmn::cli
