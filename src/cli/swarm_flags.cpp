#include "cli/swarm_flags.h"

#include "client/remote_session.h"

namespace llmn::cli {

std::vector<Flag> swarm_flags() {
    return {{{"--bootstrap"}, true, "DHT nodes host:port,... to join through (default: the public BitTorrent DHT routers)"},
            {{"--dht-listen"}, true, "host:port of the DHT socket (default 0.0.0.0:6881)"},
            {{"--no-lan"}, false, "no Local Service Discovery on the LAN"},
            {{"--no-upnp"}, false, "no UPnP / NAT-PMP port mapping"},
            {{"--standalone"}, false, "join no one (first node of a private swarm, or LAN only)"},
            {{"--one-machine"}, false, "DHT settings for many nodes on one IP (tests only)"}};
}

swarm::Dht::Config dht_config(const Args& args) {
    swarm::Dht::Config c;
    c.listen = args.str("--dht-listen", "0.0.0.0:6881");
    if (args.has("--bootstrap")) c.bootstrap = client::parse_route(args.str("--bootstrap"));
    c.lan_discovery = !args.has("--no-lan");
    c.port_mapping = !args.has("--no-upnp");
    c.standalone = args.has("--standalone");
    c.one_machine = args.has("--one-machine");
    if (c.standalone && !c.bootstrap.empty()) throw UsageError("--standalone and --bootstrap do not mix");
    return c;
}

}  // namespace llmn::cli
