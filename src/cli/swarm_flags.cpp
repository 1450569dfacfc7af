#include "cli/swarm_flags.h"

#include "client/remote_session.h"
#include "net/identity.h"

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

std::vector<Flag> session_flags(bool swarm_by_default) {
    std::vector<Flag> f = {{{"--route"}, true, "run the layers on nodes: host:port,host:port,... in layer order"},
                           {{"--nodes"}, true, "candidate nodes host:port,...: plan the route and fail over"},
                           {{"--wire-dtype"}, true, "hidden states on the wire: f16 (default) or f32"}};
    if (swarm_by_default)
        f.push_back({{"--local"}, false, "run every layer in this process instead of on the swarm"});
    else
        f.push_back({{"--swarm"}, false, "find the nodes on the DHT (with --bootstrap, or the public DHT)"});
    for (Flag& s : swarm_flags()) f.push_back(s);
    return f;
}

client::SessionSource session_source(const Args& args, const engine::Model& model, bool swarm_by_default) {
    client::SessionSource src;
    const std::string wd = args.str("--wire-dtype", "f16");
    if (wd != "f16" && wd != "f32") throw UsageError("--wire-dtype must be f16 or f32");
    src.remote.wire_f32 = wd == "f32";
    const int given = int(args.has("--route")) + int(args.has("--nodes")) + int(args.has("--local")) + int(args.has("--swarm"));
    if (given > 1) throw UsageError("give only one of --route, --nodes, --local, --swarm");
    if (args.has("--route")) {
        src.kind = client::SessionSource::Kind::route;
        src.addresses = client::parse_route(args.str("--route"));
    } else if (args.has("--nodes")) {
        src.kind = client::SessionSource::Kind::nodes;
        src.addresses = client::parse_route(args.str("--nodes"));
    } else if (args.has("--swarm") || (swarm_by_default && !args.has("--local"))) {
        auto dc = dht_config(args);
        if (!args.has("--dht-listen")) dc.listen = "0.0.0.0:0";
        auto dht = std::make_shared<swarm::Dht>(dc);
        const net::Key32 model_id = net::digest256(model.file().header_bytes());
        src.kind = client::SessionSource::Kind::discover;
        src.discover = [dht, model_id] { return dht->peers(model_id, std::chrono::milliseconds(5000)); };
    }
    return src;
}

}  // namespace llmn::cli
