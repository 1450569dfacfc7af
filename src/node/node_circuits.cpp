// Onion circuits through a node (THREAT_MODEL.md, "Onion circuits"): EXTEND
// peels one fixed-size onion slot and dials the pinned next hop, cells flow
// along the ring, and errors go back towards the client with generic texts
// (details stay in this node's log: they would name later hops to the relays).
#include <cstdlib>

#include "node/node_impl.h"

namespace llmn::node {
namespace {

constexpr size_t kMaxCircuits = 4096;           // relay and span circuits through one node
constexpr size_t kMaxJoinsPerLink = 8;          // circuits one client link may wait for at the exit
constexpr size_t kMaxJoins = 4096;
constexpr auto kJoinTimeout = std::chrono::seconds(60);  // a join whose circuit never comes
constexpr uint64_t kMaxOnionLifetime = 600;     // seconds an onion layer may claim to stay valid

bool circuit_log() {
    static const bool on = std::getenv("LLM_NODE_CIRCUIT_LOG") != nullptr;  // tests and debugging
    return on;
}

std::string who(const std::shared_ptr<net::Link>& l) { return l ? net::to_hex(l->peer_identity().data(), 6) : "-"; }

}  // namespace

awaitable<void> Node::Impl::on_extend(const std::shared_ptr<net::Link>& link, net::CircuitExtend& ext) {
    const uint64_t cid = ext.circuit_id;
    auto fail = [&](net::Errc c, const std::string& t) {
        if (circuit_log()) log_line("circuit refused: " + t);
        send_error(link, cid, c, t);
    };
    if (cid == 0 || circuits.count(cid) || sessions.count(cid)) co_return fail(net::Errc::bad_message, "circuit id in use");
    if (circuits.size() >= kMaxCircuits) co_return fail(net::Errc::overloaded, "circuit limit reached");
    std::optional<net::PeeledOnion> peeled;
    try {
        peeled = net::peel_onion(onion, ext.onion);
    } catch (const net::NetError& e) {
        co_return fail(e.code(), std::string("onion layer: ") + e.what());
    }
    if (!peeled) co_return fail(net::Errc::decrypt_failed, "the onion does not open with this node's onion key");
    net::OnionLayer& layer = peeled->layer;
    if (layer.role > 1) co_return fail(net::Errc::bad_message, "unknown onion role");
    const uint64_t now = unix_now();
    if (layer.expires_unix < now || layer.expires_unix > now + kMaxOnionLifetime)
        co_return fail(net::Errc::bad_message, "onion layer expired or valid for too long");
    switch (replays.check_and_insert(peeled->tag, layer.expires_unix, now)) {
        case ReplayCache::Verdict::replayed: co_return fail(net::Errc::bad_message, "onion layer replayed");
        case ReplayCache::Verdict::full: co_return fail(net::Errc::overloaded, "too many circuits being built");
        case ReplayCache::Verdict::fresh: break;
    }
    Circuit c;
    c.prev = link;
    c.next_id = layer.next_id;
    c.span = layer.role == 1;
    c.key_in = layer.key_in;
    c.key_out = layer.key_out;
    uint64_t kv_need = 0;
    if (c.span) {
        net::Errc code;
        const std::string why = session_refusal(cid, layer.model_id, layer.span_start, layer.span_end, layer.max_tokens, layer.wire_dtype, code, &kv_need);
        if (!why.empty()) co_return fail(code, why);
    }
    std::shared_ptr<net::Link> client;
    if (!layer.next_hop.empty()) {
        if (layer.next_hop_id == net::Key32{}) co_return fail(net::Errc::bad_message, "the onion layer pins no identity for the next hop");
        std::optional<Reservation> hold;
        if (c.span) hold.emplace(*this, kv_need);
        try {
            c.next = co_await next_link(layer.next_hop, layer.next_hop_id, *link);
        } catch (const std::exception& e) {
            // The reason (refused, closed port, wrong key) stays here: it would make this node a port scanner.
            if (circuit_log()) log_line(std::string("circuit next hop: ") + e.what());
            co_return fail(net::Errc::next_hop_failed, "next hop unreachable");
        }
    } else {
        auto it = joined.find(layer.next_id);
        client = it == joined.end() ? nullptr : it->second.link.lock();
        if (!client) co_return fail(net::Errc::next_hop_failed, "no client joined this circuit");
        joined.erase(it);
        c.client = client;
    }
    if (!link->is_open()) co_return;  // the previous hop left while we dialed
    if (circuits.count(cid) || sessions.count(cid)) co_return fail(net::Errc::bad_message, "circuit id in use");
    if (c.span) add_session(link, cid, layer.span_start, layer.span_end, layer.max_tokens, layer.wire_dtype);
    if (circuit_log())
        log_line(std::string("circuit ") + (c.span ? "span " + std::to_string(layer.span_start) + ":" + std::to_string(layer.span_end) : "relay") +
                 ": prev " + who(link) + " next " + (c.next ? who(c.next) : "client " + who(client)));
    circuits.emplace(cid, c);
    if (c.next) {
        send(c.next, net::CircuitExtend{layer.next_id, std::move(peeled->next)});
    } else {
        send(client, net::CircuitReady{layer.next_id});
    }
}

void Node::Impl::on_join(const std::shared_ptr<net::Link>& link, const net::CircuitJoin& j) {
    size_t mine = 0;
    for (const auto& [cookie, w] : joined) mine += w.link.lock() == link;
    if (j.cookie == 0 || joined.count(j.cookie)) return send_error(link, j.cookie, net::Errc::bad_message, "join cookie in use");
    if (mine >= kMaxJoinsPerLink || joined.size() >= kMaxJoins)
        return send_error(link, j.cookie, net::Errc::overloaded, "too many circuits waiting to be joined");
    joined[j.cookie] = {link, Clock::now()};
    send(link, net::Opened{j.cookie, 0});
}

void Node::Impl::expire_joins(Clock::time_point now) {
    for (auto it = joined.begin(); it != joined.end();)
        it = it->second.link.expired() || now - it->second.at > kJoinTimeout ? joined.erase(it) : std::next(it);
}

std::shared_ptr<net::Link> Node::Impl::circuit_target(const Circuit& c) { return c.next ? c.next : c.client.lock(); }

// What a relay could make of a cell it forwards (logged for the first cell
// of each circuit, for the privacy tests): it must not decode as a STEP.
static std::string relay_view(const std::vector<uint8_t>& payload) {
    try {
        if (std::holds_alternative<net::Step>(net::decode(payload.data(), payload.size()))) return "relay read a plaintext STEP";
    } catch (const net::NetError&) {
    }
    return "relay forwards a sealed cell of " + std::to_string(payload.size()) + " bytes";
}

void Node::Impl::on_cell(const std::shared_ptr<net::Link>& link, net::CircuitCell& cell) {
    auto it = circuits.find(cell.circuit_id);
    if (it == circuits.end() || it->second.prev.lock() != link)
        return send_error(link, cell.circuit_id, net::Errc::unknown_session, "no such circuit on this link");
    Circuit& c = it->second;
    if (!c.span) {  // relay: ciphertext passes
        if (circuit_log() && c.seq_in++ == 0) log_line(relay_view(cell.payload));
        return send(circuit_target(c), net::CircuitCell{c.next_id, std::move(cell.payload)});
    }
    std::vector<uint8_t> plain;
    if (c.key_in != net::Key32{}) {
        auto opened = net::open_cell(c.key_in, c.seq_in++, cell.payload);
        if (!opened) return send_error(link, cell.circuit_id, net::Errc::decrypt_failed, "cell altered, replayed or out of order");
        plain = std::move(*opened);
    } else {
        plain = std::move(cell.payload);
    }
    net::Step st;
    try {
        net::Message m = net::decode(plain.data(), plain.size());
        if (!std::holds_alternative<net::Step>(m)) throw net::NetError(net::Errc::bad_message, "a circuit cell must hold a STEP");
        st = std::get<net::Step>(std::move(m));
    } catch (const net::NetError& e) {
        return send_error(link, cell.circuit_id, e.code(), e.what());
    }
    st.session_id = cell.circuit_id;
    on_step(link, st);
}

// A span circuit's output goes on along the ring (sealed to the client at the last span).
void Node::Impl::circuit_output(Circuit& c, net::Step out) {
    std::vector<uint8_t> bytes = net::encode(out);
    if (c.key_out != net::Key32{}) bytes = net::seal_cell(c.key_out, c.seq_out++, bytes);
    send(circuit_target(c), net::CircuitCell{c.next_id, std::move(bytes)});
}

void Node::Impl::close_circuit(uint64_t cid, bool forward) {
    auto it = circuits.find(cid);
    if (it == circuits.end()) return;
    if (forward && it->second.next) send(it->second.next, net::Close{it->second.next_id});
    if (it->second.span) drop_session(cid);
    circuits.erase(it);
}

// An ERROR from a next hop about one of our circuits goes back towards the
// client with its code only: the text may name hops the relays must not learn.
void Node::Impl::back_error(const std::shared_ptr<net::Link>& from, uint64_t id, net::Errc code, const std::string& text) {
    for (auto& [cid, c] : circuits)
        if (c.next == from && c.next_id == id) {
            if (circuit_log()) log_line("circuit error from the next hop: " + text);
            send_error(c.prev.lock(), cid, code, "a later hop of the circuit failed");
            close_circuit(cid, false);
            return;
        }
}

void Node::Impl::next_link_lost(const std::shared_ptr<net::Link>& link) {
    std::vector<uint64_t> dead;
    for (auto& [cid, c] : circuits)
        if (c.next == link) dead.push_back(cid);
    for (uint64_t cid : dead) {
        send_error(circuits[cid].prev.lock(), cid, net::Errc::next_hop_failed, "the next hop of the circuit went away");
        close_circuit(cid, false);
    }
}

}  // namespace llmn::node
