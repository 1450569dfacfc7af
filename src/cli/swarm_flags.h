// Flags shared by the commands that join the swarm (start, generate --swarm).
#pragma once
#include <vector>

#include "cli/args.h"
#include "swarm/dht.h"

namespace llmn::cli {

// --bootstrap, --dht-listen, --no-lan, --no-upnp, --one-machine, --standalone.
std::vector<Flag> swarm_flags();
swarm::Dht::Config dht_config(const Args& args);

}  // namespace llmn::cli
