// What a node asks of its own DHT socket.
//
// A lookup never asks the node that runs it, yet announces are stored on the
// k nodes closest to the key, which can include us: on a 2-node LAN each
// node's entry lives only on the other. So peers() also sends get_peers to
// our own DHT socket and merges the "values" it returns (ask_self).
//
// And a node's own announce is stored only on *other* nodes, which a small or
// young swarm may not have: a bootstrap node that serves the swarm itself, or
// nodes whose peers all sit behind NAT (their DHT answers nobody who did not
// ask first), left their entry nowhere, and clients found no one. So a
// reachable node also stores its announce in its own storage, and every node
// on its bootstrap nodes (store_self): get_peers to that socket for a token,
// then announce_peer with it; the storing node records the address the request
// came from (for our own socket: the address others reach us by).
#include "swarm/dht_impl.h"

#include <libtorrent/bdecode.hpp>

namespace llmn::swarm {

void Dht::Impl::send_self(std::unique_ptr<SelfRequest> req, const lt::udp::endpoint& to, lt::entry e) {
    SelfRequest* tag = req.get();
    {
        std::lock_guard lk(mu);
        self_queries.push_back(std::move(req));
    }
    // libtorrent answers every direct request once, with a response or empty on timeout.
    ses->dht_direct_request(to, e, lt::client_data_t(tag));
}

void Dht::Impl::ask_self(const lt::sha1_hash& ih) {
    lt::udp::endpoint ep;
    {
        std::lock_guard lk(mu);
        if (self.port() == 0) return;
        ep = self;
    }
    auto req = std::make_unique<SelfRequest>();
    req->info_hash = ih;
    lt::entry e;
    e["q"] = "get_peers";
    e["a"]["info_hash"] = std::string(ih.data(), ih.size());
    send_self(std::move(req), ep, std::move(e));
}

void Dht::Impl::store_self(const Announcement& a) {
    std::vector<lt::udp::endpoint> targets;
    lt::error_code ec;
    const lt::address ip = lt::make_address(a.self_ip, ec);
    {
        std::lock_guard lk(mu);
        if (!a.self_ip.empty() && !ec && !ip.is_unspecified() && udp_port != 0) targets.emplace_back(ip, udp_port);
    }
    // The bootstrap nodes too, directly: a DHT announce goes out only when its
    // lookup has ended, and one dead node in the table holds that for ~15 s
    // (seen behind NAT: the bootstrap node had the entry 15-20 s late).
    for (const auto& b : cfg.bootstrap) {
        const lt::address bip = lt::make_address(b.substr(0, b.rfind(':')), ec);
        if (!ec) targets.emplace_back(bip, uint16_t(std::stoi(b.substr(b.rfind(':') + 1))));
    }
    for (const auto& to : targets) {
        auto req = std::make_unique<SelfRequest>();
        req->kind = SelfRequest::Kind::store;
        req->info_hash = a.info_hash;
        req->port = a.port;
        req->to = to;
        lt::entry e;
        e["q"] = "get_peers";
        e["a"]["info_hash"] = std::string(a.info_hash.data(), a.info_hash.size());
        send_self(std::move(req), to, std::move(e));
    }
}

void Dht::Impl::on_self_reply(const lt::dht_direct_response_alert& d) {
    auto* tag = d.userdata.get<SelfRequest>();
    std::unique_ptr<SelfRequest> req;
    {
        std::lock_guard lk(mu);
        auto it = std::find_if(self_queries.begin(), self_queries.end(), [&](auto& p) { return p.get() == tag; });
        if (it == self_queries.end()) return;  // an announce_peer's answer, or not ours
        req = std::move(*it);
        self_queries.erase(it);
    }
    const lt::bdecode_node r = d.response();
    const lt::bdecode_node body = r.type() == lt::bdecode_node::dict_t ? r.dict_find_dict("r") : lt::bdecode_node();
    if (req->kind == SelfRequest::Kind::store) {
        const std::string token(body ? body.dict_find_string_value("token") : lt::string_view());
        if (token.empty()) return;  // no answer from that address (behind a NAT without hairpinning)
        lt::entry e;
        e["q"] = "announce_peer";
        e["a"]["info_hash"] = std::string(req->info_hash.data(), req->info_hash.size());
        e["a"]["port"] = int(req->port);
        e["a"]["token"] = token;
        ses->dht_direct_request(req->to, e);  // its answer carries no userdata: ignored above
        return;
    }
    std::vector<lt::tcp::endpoint> found;
    const lt::bdecode_node values = body ? body.dict_find_list("values") : lt::bdecode_node();
    for (int i = 0; values && i < values.list_size(); ++i) {
        lt::string_view v = values.list_string_value_at(i);
        if (v.size() != 6) continue;  // compact IPv4 + port
        const auto* b = reinterpret_cast<const uint8_t*>(v.data());
        found.emplace_back(lt::address_v4({b[0], b[1], b[2], b[3]}), uint16_t((b[4] << 8) | b[5]));
    }
    std::lock_guard lk(mu);
    add_found(req->info_hash, found);
}

}  // namespace llmn::swarm
