#include "cli/swarm_flags.h"

#include "client/audit.h"

#include "engine/model_id.h"
#include "client/remote_session.h"
#include "model/partial_model.h"
#include "net/identity.h"

namespace llmn::cli {

std::vector<Flag> swarm_flags() {
    return {{{"--bootstrap"}, true, "DHT nodes host:port,... to join through (default: the public BitTorrent DHT routers)"},
            {{"--dht-listen"}, true, "host:port of the DHT socket (default 0.0.0.0:6881)"},
            {{"--no-lan"}, false, "no Local Service Discovery on the LAN"},
            {{"--no-upnp"}, false, "no UPnP / NAT-PMP port mapping"},
            {{"--standalone"}, false, "join no one (first node of a private swarm, or LAN only)"},
            {{"--one-machine"}, false, "DHT settings for many nodes on one IP (tests only)"},
            {{"--swarm-key"}, true, "private swarm: FILE of 32 random bytes (or 64 hex digits) that its nodes and clients share; "
                                    "make one with: head -c 32 /dev/urandom > swarm.key"},
            {{"--weights-dir"}, true, "where weights fetched from the swarm are kept (default ~/.cache/llm-node/weights)"},
            {{"--max-download"}, true, "cap on fetching weights, bytes/s: 500K, 20M, 1G (default: no cap)"}};
}

std::optional<net::SwarmKey> swarm_key(const Args& args) {
    if (!args.has("--swarm-key")) return std::nullopt;
    return net::load_swarm_key(args.str("--swarm-key"));
}

swarm::Dht::Config dht_config(const Args& args) {
    swarm::Dht::Config c;
    c.listen = args.str("--dht-listen", "0.0.0.0:6881");
    if (args.has("--bootstrap")) c.bootstrap = client::parse_route(args.str("--bootstrap"));
    c.lan_discovery = !args.has("--no-lan");
    c.port_mapping = !args.has("--no-upnp");
    c.standalone = args.has("--standalone");
    c.one_machine = args.has("--one-machine");
    c.swarm_key = swarm_key(args);
    if (c.standalone && !c.bootstrap.empty()) throw UsageError("--standalone and --bootstrap do not mix");
    return c;
}

std::vector<Flag> session_flags(bool swarm_by_default) {
    std::vector<Flag> f = {{{"--route"}, true, "run the layers on nodes: host:port,host:port,... in layer order"},
                           {{"--nodes"}, true, "candidate nodes host:port,...: plan the route and fail over"},
                           {{"--wire-dtype"}, true, "hidden states on the wire: f16 (default) or f32"},
                           {{"--local-layers"}, true, "run the first N layers in this process, so no node sees the embeddings (default 0)"},
                           {{"--relays"}, true, "onion relays before and after the spans: 0 or 1, or E,X per side (default 1 on the public swarm, else 0)"},
                           {{"--entry-relay"}, true, "with --route: the relay between this client and the first span"},
                           {{"--exit-relay"}, true, "with --route: the relay between the last span and this client"},
                           {{"--punch-ms"}, true, "links to nodes behind a relay first try a direct connection this long (default 1500; 0: never)"},
                           {{"--verify"}, true, "audit the nodes: this share of each hop's steps is re-run on a replica from the hop's own KV "
                                               "rows, and a hop that differs is banned (0..1; default 0.1 with --nodes or the swarm without relays; 0: off)"},
                           {{"--verify-every"}, false, "replicas re-run every step (a full second run): no wrong position reaches the text"},
                           {{"--verify-tolerance"}, true, "relative L2 error above which an audited position is wrong (default 0.006; also lets quantized hops be checked on other kernels)"}};
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
    src.remote.swarm_key = swarm_key(args);  // links to the nodes prove it; the DHT lookup below uses it too
    src.remote.punch_window = std::chrono::milliseconds(args.integer("--punch-ms", src.remote.punch_window.count()));
    if (src.remote.punch_window.count() < 0 || src.remote.punch_window.count() > 5000) throw UsageError("--punch-ms must be 0..5000");
    const int given = int(args.has("--route")) + int(args.has("--nodes")) + int(args.has("--local")) + int(args.has("--swarm"));
    if (given > 1) throw UsageError("give only one of --route, --nodes, --local, --swarm");
    if (args.has("--local-layers")) {
        const bool remote = args.has("--route") || args.has("--nodes") || args.has("--swarm") || (swarm_by_default && !args.has("--local"));
        if (!remote) throw UsageError("--local-layers needs nodes (--route, --nodes or the swarm): without them every layer runs here");
        const int64_t n = args.integer("--local-layers", 0), n_layer = model.config().n_layer;
        if (n < 0 || n >= n_layer)
            throw UsageError("--local-layers must be 0.." + std::to_string(n_layer - 1) + " (the model has " + std::to_string(n_layer) +
                             " layers and the nodes must run at least one), got " + std::to_string(n));
        src.remote.local_layers = int(n);
    }
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
        const net::Key32 model_id = engine::model_id(model);
        src.kind = client::SessionSource::Kind::discover;
        src.discover = [dht, model_id] { return dht->peers(model_id, std::chrono::milliseconds(5000)); };
    }
    // DHT flags ask for the swarm: never drop them and run every layer here unasked
    // (unless they fetched the model's weights: -m MODEL_ID, cli/weights_cli.h).
    if (src.kind != client::SessionSource::Kind::discover && !model::is_partial(model.path()))
        for (const char* f : {"--bootstrap", "--dht-listen", "--standalone"})
            if (args.has(f))
                throw UsageError(std::string(f) + " finds nodes on the DHT, but this run " +
                                 (args.has("--local") || !swarm_by_default ? "is local" : "uses the nodes given") +
                                 (swarm_by_default ? ": drop --local (or the flag)" : ": add --swarm (or drop the flag to run locally)"));
    // Onion circuits: who may learn this client's address (THREAT_MODEL.md).
    if (args.has("--entry-relay") || args.has("--exit-relay")) {
        if (src.kind != client::SessionSource::Kind::route) throw UsageError("--entry-relay / --exit-relay go with --route (else use --relays)");
        src.entry_relay = args.str("--entry-relay");
        src.exit_relay = args.str("--exit-relay");
    }
    const bool public_swarm = src.kind == client::SessionSource::Kind::discover && !src.remote.swarm_key;
    const std::string relays = args.str("--relays", public_swarm ? "1" : "0");
    const auto comma = relays.find(',');
    const std::string e = relays.substr(0, comma), x = comma == std::string::npos ? e : relays.substr(comma + 1);
    if ((e != "0" && e != "1") || (x != "0" && x != "1")) throw UsageError("--relays wants 0, 1 or E,X with each 0 or 1, got '" + relays + "'");
    if (args.has("--relays") && (src.kind == client::SessionSource::Kind::local || src.kind == client::SessionSource::Kind::route) &&
        relays != "0")
        throw UsageError(src.kind == client::SessionSource::Kind::route ? "with --route, name the relays (--entry-relay, --exit-relay)"
                                                                        : "--relays needs nodes (--nodes or the swarm)");
    src.entry_relays = e == "1";
    src.exit_relays = x == "1";
    // Audits (client/audit.h): replicas need a list of nodes to choose from, and
    // the receipts a direct link to each hop (not yet through onion circuits).
    const bool can_verify = (src.kind == client::SessionSource::Kind::nodes || src.kind == client::SessionSource::Kind::discover) &&
                            !src.entry_relays && !src.exit_relays;
    if (args.has("--verify")) {
        const double rate = args.number("--verify", 0);
        if (!(rate >= 0 && rate <= 1)) throw UsageError("--verify must be between 0 and 1");
        if (rate > 0 && !can_verify)
            throw UsageError(src.kind == client::SessionSource::Kind::nodes || src.kind == client::SessionSource::Kind::discover
                                 ? "--verify does not run over onion circuits yet: add --relays 0"
                                 : "--verify needs nodes to pick replicas from (--nodes or the swarm)");
        src.remote.verify_rate = rate;
    } else if (can_verify) {
        src.remote.verify_rate = client::kDefaultVerifyRate;
    }
    src.remote.verify_every = args.has("--verify-every");
    if (src.remote.verify_every && src.remote.verify_rate == 0) throw UsageError("--verify-every needs --verify above 0");
    if (args.has("--verify-tolerance")) {
        const double tol = args.number("--verify-tolerance", 0);
        if (!(tol > 0 && tol < 1)) throw UsageError("--verify-tolerance must be between 0 and 1");
        src.remote.verify_tolerance = tol;
    }
    return src;
}

}  // namespace llmn::cli
