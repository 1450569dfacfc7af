#include "node/node.h"

#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "engine/model_id.h"
#include "engine/layer_span.h"
#include "net/link.h"
#include "net/onion.h"
#include "net/wire_hidden.h"
#include "node/compute_queue.h"
#include "node/node_reach.h"

namespace llmn::node {

using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::pair<std::string, std::string> split_host_port(const std::string& hp) {
    const auto colon = hp.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size())
        throw std::invalid_argument("address '" + hp + "' is not host:port");
    return {hp.substr(0, colon), hp.substr(colon + 1)};
}

constexpr int kInlineMaxTokens = 4;  // steps this small may run on the io thread

void log_line(const std::string& s) { std::fprintf(stderr, "[node] %s\n", s.c_str()); }

}  // namespace

struct Node::Impl {
    NodeConfig cfg;
    std::shared_ptr<const engine::Model> model;
    std::shared_ptr<const engine::SpanWeights> weights;
    net::Key32 model_id{};
    net::Identity identity;
    net::LinkOptions link_opts;
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::unique_ptr<ComputeQueue> compute;

    struct Session {
        uint64_t id = 0;
        std::shared_ptr<engine::KvCache> cache;
        std::weak_ptr<net::Link> owner;
        net::Key32 prev_hop{};
        std::shared_ptr<net::Link> next;  // null on the last hop
        std::string next_addr;
        uint64_t next_session_id = 0;
        net::WireDType wire = net::WireDType::f16;
        int first = 0, last = 0;  // the session's layers, relative to the node's span
        Clock::time_point last_active;
        Clock::time_point last_step{};  // of a step (not an open): who is generating now
    };
    std::unordered_map<uint64_t, Session> sessions;
    // Onion circuits through this node, by the id the previous hop uses. A span
    // circuit also has a Session under the same id.
    struct Circuit {
        std::weak_ptr<net::Link> prev;
        std::shared_ptr<net::Link> next;  // null at the exit: deliver to the joined client
        uint64_t next_id = 0;             // id on the next link, or the client's cookie
        bool span = false;
        net::Key32 key_in{}, key_out{};   // end-to-end keys with the client (zero: none)
        uint64_t seq_in = 0, seq_out = 0;
    };
    std::unordered_map<uint64_t, Circuit> circuits;
    std::unordered_map<uint64_t, std::weak_ptr<net::Link>> joined;  // cookie -> client link
    net::OnionKeys onion = net::OnionKeys::generate();
    std::map<std::string, std::shared_ptr<net::Link>> next_links;  // by address
    struct Inbound {
        std::weak_ptr<net::Link> link;
        Clock::time_point last_message;
    };
    std::unordered_map<const net::Link*, Inbound> inbound;  // accepted links, for the silence check
    uint64_t kv_bytes = 0;
    Stats stats;
    std::atomic<bool> stopping{false};
    NodeReach* reach = nullptr;  // relaying, dial-back and our own relay (node_reach.h)

    // Sends without waiting; a failed write closes that link (and its reader notices).
    void send(const std::shared_ptr<net::Link>& link, net::Message m) {
        if (!link || !link->is_open()) return;
        asio::co_spawn(io, [link, m = std::move(m)]() -> awaitable<void> { co_await link->write(m); },
                       [](std::exception_ptr) {});
    }
    void send_error(const std::shared_ptr<net::Link>& link, uint64_t sid, net::Errc code, const std::string& text) {
        send(link, net::Error{sid, uint16_t(code), text});
    }

    void drop_session(uint64_t sid) {
        auto it = sessions.find(sid);
        if (it == sessions.end()) return;
        kv_bytes -= it->second.cache->bytes();
        sessions.erase(it);
        stats.active_sessions = int(sessions.size());
    }

    net::NodeInfo info() const {
        net::NodeInfo ni;
        ni.model_id = model_id;
        ni.n_layer = uint32_t(model->config().n_layer);
        ni.span_start = uint32_t(cfg.span_start);
        ni.span_end = uint32_t(cfg.span_end);
        ni.free_sessions = uint32_t(std::max<int>(0, cfg.max_sessions - int(sessions.size())));
        ni.version = "llm-node/0.1";
        ni.milli_tokens_per_s = uint32_t(std::min(4e9, cfg.tokens_per_s * 1000.0));
        ni.onion_key = onion.pk;
        reach->fill(ni);
        return ni;
    }

    awaitable<std::shared_ptr<net::Link>> next_link(const std::string& addr) {
        auto it = next_links.find(addr);
        if (it != next_links.end() && it->second->is_open()) co_return it->second;
        auto link = co_await net::Link::connect(addr, identity, link_opts);
        next_links[addr] = link;
        // What the next hop sends back: circuit errors go back towards the
        // client; plain sessions report errors to their owners directly.
        asio::co_spawn(io, [this, link]() -> awaitable<void> {
            for (;;) {
                net::Message m = co_await link->read();
                if (auto* e = std::get_if<net::Error>(&m)) back_error(link, e->session_id, net::Errc(e->code), e->text);
            }
        }, [this, link](std::exception_ptr) { next_link_lost(link); });
        co_return link;
    }

    // Checks a session request against what this node serves and its caps;
    // an error text, or "" when a session with these settings fits.
    std::string session_refusal(uint64_t sid, const net::Key32& mid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire,
                                net::Errc& code) const {
        code = net::Errc::bad_message;
        if (cfg.relay_only) return code = net::Errc::bad_span, "this node only relays";
        if (mid != model_id) return code = net::Errc::wrong_model, "this node serves model " + net::to_hex(model_id.data(), 8) + "...";
        // Any sub-span of ours: routes over nodes with overlapping spans use part of one.
        if (int(start) < cfg.span_start || int(end) > cfg.span_end || start >= end)
            return code = net::Errc::bad_span, "this node serves layers " + std::to_string(cfg.span_start) + ":" + std::to_string(cfg.span_end);
        if (sid == 0 || sessions.count(sid) || circuits.count(sid)) return "session id in use";
        if (max_tokens == 0 || int64_t(max_tokens) > cfg.max_ctx)
            return code = net::Errc::overloaded, "max_tokens must be 1.." + std::to_string(cfg.max_ctx);
        if (wire > uint8_t(net::WireDType::f16)) return "unknown wire dtype";
        const int first = int(start) - cfg.span_start, last = int(end) - cfg.span_start;
        const uint64_t need = engine::KvCache::bytes_for(*weights, int(max_tokens), last - first);
        if (int(sessions.size()) >= cfg.max_sessions) return code = net::Errc::overloaded, "session limit reached";
        if (kv_bytes + need > cfg.max_memory) return code = net::Errc::overloaded, "memory limit reached";
        return "";
    }

    Session& add_session(const std::shared_ptr<net::Link>& owner, uint64_t sid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire) {
        Session s;
        s.id = sid;
        s.owner = owner;
        s.wire = net::WireDType(wire);
        s.last_active = Clock::now();
        s.first = int(start) - cfg.span_start;
        s.last = int(end) - cfg.span_start;
        s.cache = std::make_shared<engine::KvCache>(*weights, int(max_tokens), s.last - s.first);
        kv_bytes += s.cache->bytes();
        ++stats.sessions_opened;
        Session& ref = sessions.emplace(sid, std::move(s)).first->second;
        stats.active_sessions = int(sessions.size());
        return ref;
    }

    awaitable<void> on_open(const std::shared_ptr<net::Link>& link, const net::OpenSession& o) {
        net::Errc code;
        const std::string why = session_refusal(o.session_id, o.model_id, o.span_start, o.span_end, o.max_tokens, o.wire_dtype, code);
        if (!why.empty()) co_return send_error(link, o.session_id, code, why);
        std::shared_ptr<net::Link> next;
        if (!o.next_hop.empty()) {
            try {
                next = co_await next_link(o.next_hop);
            } catch (const std::exception& e) {
                co_return send_error(link, o.session_id, net::Errc::next_hop_failed, "next hop " + o.next_hop + ": " + e.what());
            }
        }
        if (sessions.count(o.session_id)) co_return send_error(link, o.session_id, net::Errc::bad_message, "session id in use");
        Session& s = add_session(link, o.session_id, o.span_start, o.span_end, o.max_tokens, o.wire_dtype);
        s.prev_hop = o.prev_hop;
        s.next = next;
        s.next_addr = o.next_hop;
        s.next_session_id = o.next_session_id;
        send(link, net::Opened{o.session_id, o.max_tokens});
    }

    // --- onion circuits -------------------------------------------------

    std::shared_ptr<net::Link> circuit_target(const Circuit& c) {
        if (c.next) return c.next;
        auto it = joined.find(c.next_id);
        return it == joined.end() ? nullptr : it->second.lock();
    }

    static std::string who(const std::shared_ptr<net::Link>& l) { return l ? net::to_hex(l->peer_identity().data(), 6) : "-"; }

    awaitable<void> on_extend(const std::shared_ptr<net::Link>& link, net::CircuitExtend& ext) {
        const uint64_t cid = ext.circuit_id;
        auto fail = [&](net::Errc c, const std::string& t) { send_error(link, cid, c, t); };
        if (cid == 0 || circuits.count(cid) || sessions.count(cid)) co_return fail(net::Errc::bad_message, "circuit id in use");
        const auto plain = net::open_sealed(onion, ext.onion);
        if (!plain) co_return fail(net::Errc::decrypt_failed, "the onion layer does not open with this node's onion key");
        net::Message m;
        try {
            m = net::decode(plain->data(), plain->size());
        } catch (const net::NetError& e) {
            co_return fail(e.code(), std::string("onion layer: ") + e.what());
        }
        auto* layer = std::get_if<net::OnionLayer>(&m);
        if (!layer || layer->role > 1) co_return fail(net::Errc::bad_message, "not an onion layer");
        Circuit c;
        c.prev = link;
        c.next_id = layer->next_id;
        c.span = layer->role == 1;
        c.key_in = layer->key_in;
        c.key_out = layer->key_out;
        if (c.span) {
            net::Errc code;
            const std::string why = session_refusal(cid, layer->model_id, layer->span_start, layer->span_end, layer->max_tokens, layer->wire_dtype, code);
            if (!why.empty()) co_return fail(code, why);
        }
        std::shared_ptr<net::Link> client;
        if (!layer->next_hop.empty()) {
            try {
                c.next = co_await next_link(layer->next_hop);
            } catch (const std::exception& e) {
                co_return fail(net::Errc::next_hop_failed, "next hop " + layer->next_hop + ": " + e.what());
            }
        } else {
            auto it = joined.find(layer->next_id);
            client = it == joined.end() ? nullptr : it->second.lock();
            if (!client) co_return fail(net::Errc::next_hop_failed, "no client joined this circuit");
        }
        if (circuits.count(cid) || sessions.count(cid)) co_return fail(net::Errc::bad_message, "circuit id in use");
        if (c.span) add_session(link, cid, layer->span_start, layer->span_end, layer->max_tokens, layer->wire_dtype);
        if (std::getenv("LLM_NODE_CIRCUIT_LOG"))
            log_line(std::string("circuit ") + (c.span ? "span " + std::to_string(layer->span_start) + ":" + std::to_string(layer->span_end) : "relay") +
                     ": prev " + who(link) + " next " + (c.next ? who(c.next) : "client " + who(client)));
        circuits.emplace(cid, c);
        if (c.next) send(c.next, net::CircuitExtend{layer->next_id, std::move(layer->inner)});
        else send(client, net::CircuitReady{layer->next_id});
    }

    // What a relay could make of a cell it forwards (logged for the first cell
    // of each circuit, for the privacy tests): it must not decode as a STEP.
    static std::string relay_view(const std::vector<uint8_t>& payload) {
        try {
            if (std::holds_alternative<net::Step>(net::decode(payload.data(), payload.size()))) return "relay read a plaintext STEP";
        } catch (const net::NetError&) {
        }
        return "relay forwards a sealed cell of " + std::to_string(payload.size()) + " bytes";
    }

    void on_cell(const std::shared_ptr<net::Link>& link, net::CircuitCell& cell) {
        auto it = circuits.find(cell.circuit_id);
        if (it == circuits.end() || it->second.prev.lock() != link)
            return send_error(link, cell.circuit_id, net::Errc::unknown_session, "no such circuit on this link");
        Circuit& c = it->second;
        if (!c.span) {  // relay: ciphertext passes
            if (std::getenv("LLM_NODE_CIRCUIT_LOG") && c.seq_in++ == 0) log_line(relay_view(cell.payload));
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
    void circuit_output(Circuit& c, net::Step out) {
        std::vector<uint8_t> bytes = net::encode(out);
        if (c.key_out != net::Key32{}) bytes = net::seal_cell(c.key_out, c.seq_out++, bytes);
        send(circuit_target(c), net::CircuitCell{c.next_id, std::move(bytes)});
    }

    void close_circuit(uint64_t cid, bool forward) {
        auto it = circuits.find(cid);
        if (it == circuits.end()) return;
        if (forward && it->second.next) send(it->second.next, net::Close{it->second.next_id});
        if (it->second.span) drop_session(cid);
        circuits.erase(it);
    }

    // An ERROR from a next hop about one of our circuits goes back towards the client.
    void back_error(const std::shared_ptr<net::Link>& from, uint64_t id, net::Errc code, const std::string& text) {
        for (auto& [cid, c] : circuits)
            if (c.next == from && c.next_id == id) {
                send_error(c.prev.lock(), cid, code, text);
                close_circuit(cid, false);
                return;
            }
    }

    void next_link_lost(const std::shared_ptr<net::Link>& link) {
        std::vector<uint64_t> dead;
        for (auto& [cid, c] : circuits)
            if (c.next == link) dead.push_back(cid);
        for (uint64_t cid : dead) {
            send_error(circuits[cid].prev.lock(), cid, net::Errc::next_hop_failed, "the next hop of the circuit went away");
            close_circuit(cid, false);
        }
    }

    void on_step(const std::shared_ptr<net::Link>& link, net::Step& st) {
        auto it = sessions.find(st.session_id);
        const bool allowed = it != sessions.end() &&
                             (it->second.owner.lock() == link || (it->second.prev_hop != net::Key32{} && it->second.prev_hop == link->peer_identity()));
        if (!allowed) return send_error(link, st.session_id, net::Errc::unknown_session, "no such session on this link");
        Session& s = it->second;
        s.last_active = s.last_step = Clock::now();
        const int d = model->config().n_embd;
        auto owner = s.owner.lock();
        if (st.n_tokens == 0 || st.n_tokens > 4096)
            return send_error(owner, s.id, net::Errc::bad_message, "step of " + std::to_string(st.n_tokens) + " tokens");
        ComputeJob job;
        job.session_id = s.id;
        job.cache = s.cache;
        job.pos = int(st.pos);
        job.n_tokens = int(st.n_tokens);
        job.first = s.first;
        job.last = s.last;
        job.hidden.resize(size_t(st.n_tokens) * d);
        job.t_arrived = steady_ns();
        try {
            net::unpack_hidden(st.hidden, st.dtype, job.hidden.size(), job.hidden.data());
        } catch (const net::NetError& e) {
            return send_error(owner, s.id, e.code(), e.what());
        }
        static const bool log_steps = std::getenv("LLM_NODE_LOG_STEPS") != nullptr;  // debugging and tests: what a span receives
        if (log_steps && d >= 4) {
            char line[192];
            const float* h = job.hidden.data();
            std::snprintf(line, sizeof line, "step session %016llx layers %d:%d pos %u n %u hidden[0][0:4] %.9g %.9g %.9g %.9g",
                          (unsigned long long)s.id, cfg.span_start + s.first, cfg.span_start + s.last, unsigned(st.pos),
                          unsigned(st.n_tokens), h[0], h[1], h[2], h[3]);
            log_line(line);
        }
        ++stats.steps;
        // A lone session's decode step runs right here (nothing to batch it with, and two
        // thread hand-offs fewer per hop); while other sessions step, it joins the batches.
        // Prompt chunks always go to the compute thread: the io thread must not stop
        // answering pings, probes and opens for the seconds a long prompt takes.
        if (job.n_tokens <= kInlineMaxTokens && !others_stepping(s))
            if (std::optional<ComputeDone> done = compute->try_run_inline(job)) return on_done(std::move(*done));
        compute->push(std::move(job));
    }

    // Another session stepped in the last second, and its client is still there (a
    // finished session whose link just closed waits up to a second for the sweep).
    bool others_stepping(const Session& self) const {
        const auto recent = Clock::now() - std::chrono::seconds(1);
        for (const auto& [sid, s] : sessions)
            if (&s != &self && s.last_step > recent && !s.owner.expired()) return true;
        return false;
    }

    // Runs on the io thread when the compute thread finished a job.
    void on_done(ComputeDone done) {
        auto it = sessions.find(done.session_id);
        if (it == sessions.end()) return;  // closed meanwhile
        Session& s = it->second;
        auto owner = s.owner.lock();
        if (!done.error.empty()) return send_error(owner, s.id, net::Errc::compute_failed, done.error);
        std::vector<uint8_t> bytes = net::pack_hidden(done.hidden.data(), done.hidden.size(), s.wire);
        const uint8_t dt = uint8_t(s.wire);
        if (auto c = circuits.find(s.id); c != circuits.end())
            return circuit_output(c->second, net::Step{0, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        const int64_t t_send = steady_ns();
        if (s.next) {
            if (!s.next->is_open())
                return send_error(owner, s.id, net::Errc::next_hop_failed, "link to next hop " + s.next_addr + " is closed");
            send(s.next, net::Step{s.next_session_id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        } else {
            send(owner, net::Result{s.id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        }
        // Latency tracing (bench/pipeline_trace.py): when the step arrived, ran, finished and was sent.
        static const bool trace = std::getenv("LLM_NODE_TRACE_STEPS") != nullptr;
        if (trace)
            std::fprintf(stderr, "[trace] hop %d:%d pos %d arrived %lld started %lld finished %lld sent %lld\n", cfg.span_start + s.first,
                         cfg.span_start + s.last, done.pos, (long long)done.t_arrived, (long long)done.t_started,
                         (long long)done.t_finished, (long long)t_send);
    }

    awaitable<void> serve_link(tcp::socket socket) {
        std::shared_ptr<net::Link> link;
        std::string peer = "?";
        try {
            peer = socket.remote_endpoint().address().to_string() + ":" + std::to_string(socket.remote_endpoint().port());
            link = co_await net::Link::accept(std::move(socket), identity, link_opts);
            co_await link->write(info());
            inbound[link.get()] = {link, Clock::now()};
            for (;;) {
                net::Message m = co_await link->read();
                inbound[link.get()].last_message = Clock::now();
                if (auto* o = std::get_if<net::OpenSession>(&m)) {
                    co_await on_open(link, *o);
                } else if (auto* st = std::get_if<net::Step>(&m)) {
                    on_step(link, *st);
                } else if (auto* ext = std::get_if<net::CircuitExtend>(&m)) {
                    co_await on_extend(link, *ext);
                } else if (auto* cell = std::get_if<net::CircuitCell>(&m)) {
                    on_cell(link, *cell);
                } else if (auto* j = std::get_if<net::CircuitJoin>(&m)) {
                    joined[j->cookie] = link;
                    send(link, net::Opened{j->cookie, 0});
                } else if (auto* c = std::get_if<net::Close>(&m)) {
                    auto ci = circuits.find(c->session_id);
                    auto it = sessions.find(c->session_id);
                    if (ci != circuits.end() && ci->second.prev.lock() == link) close_circuit(c->session_id, true);
                    else if (it != sessions.end() && it->second.owner.lock() == link) drop_session(c->session_id);
                } else if (auto* p = std::get_if<net::Ping>(&m)) {
                    send(link, net::Pong{p->nonce});
                } else if (auto handled = co_await reach->dispatch(link, m)) {
                    if (*handled) break;  // the connection is spliced now: leave it to the relay
                } else if (std::holds_alternative<net::Error>(m) || std::holds_alternative<net::Pong>(m)) {
                    // informational
                } else {
                    link->close(net::Errc::bad_message, "unexpected " + net::to_string(m));
                    break;
                }
            }
        } catch (const net::NetError& e) {
            // A peer hanging up (a probe, a finished client) is not worth a log line.
            if (e.code() != net::Errc::closed) {
                ++stats.link_errors;
                if (!stopping) log_line("[peer " + peer + "] " + e.what());
            }
        } catch (const std::exception& e) {
            ++stats.link_errors;
            if (!stopping) log_line("[peer " + peer + "] " + e.what());
        }
        if (link) {
            inbound.erase(link.get());
            reach->relay.on_closed(link.get());
            // Circuits coming in on this link end with it (and tell the rest of the ring).
            std::vector<uint64_t> gone;
            for (auto& [cid, c] : circuits)
                if (c.prev.lock() == link || c.prev.expired()) gone.push_back(cid);
            for (uint64_t cid : gone) close_circuit(cid, true);
            for (auto it = joined.begin(); it != joined.end();) it = it->second.lock() == link || it->second.expired() ? joined.erase(it) : std::next(it);
            // Sessions owned by this link end with it.
            std::vector<uint64_t> owned;
            for (auto& [sid, s] : sessions)
                if (s.owner.lock() == link || s.owner.expired()) owned.push_back(sid);
            for (uint64_t sid : owned) drop_session(sid);
            link->close(net::Errc::closed);
        }
    }

    awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) {
                if (stopping || ec == asio::error::operation_aborted) co_return;
                // e.g. EMFILE: keep serving the links we have, and wait before the
                // next try (the pending connection stays queued: retrying at once spins).
                asio::steady_timer backoff(io, std::chrono::milliseconds(100));
                co_await backoff.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                continue;
            }
            asio::co_spawn(io, serve_link(std::move(socket)), asio::detached);
        }
    }

    awaitable<void> idle_sweep() {
        asio::steady_timer timer(io);
        for (;;) {
            timer.expires_after(std::min<std::chrono::milliseconds>(std::chrono::seconds(1), cfg.idle_timeout));
            auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec || stopping) co_return;
            const auto now = Clock::now();
            std::vector<uint64_t> idle;
            for (auto& [sid, s] : sessions)
                if (now - s.last_active > cfg.idle_timeout || s.owner.expired()) idle.push_back(sid);
            for (uint64_t sid : idle) {
                send_error(sessions[sid].owner.lock(), sid, net::Errc::timeout, "session idle for too long");
                drop_session(sid);
            }
            close_silent_links(now);
        }
    }

    // A peer that sends nothing, or stalls inside a frame, for longer than a session may idle
    // loses its link, so it cannot hold an fd and a buffer forever. A link stays while it owns
    // a session that is active: a route's client sends nothing on it while steps come in
    // through the previous hop.
    void close_silent_links(Clock::time_point now) {
        const auto silence = cfg.idle_timeout + std::min(cfg.idle_timeout, std::chrono::seconds(60));
        std::vector<std::shared_ptr<net::Link>> silent;
        for (auto& [ptr, in] : inbound) {
            if (now - in.last_message <= silence) continue;
            auto link = in.link.lock();
            if (!link) continue;
            bool active = false;
            for (auto& [sid, s] : sessions) active = active || s.owner.lock() == link;
            if (!active) silent.push_back(std::move(link));
        }
        for (auto& link : silent)
            link->close(net::Errc::timeout, "no complete message for " + std::to_string(silence.count()) + " s");
    }
};

Node::Node(NodeConfig cfg) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    net::ensure_sodium();
    m.model = engine::Model::load(cfg.model_path);
    if (cfg.relay_only) cfg.span_start = cfg.span_end = 0;  // advertised as 0:0; no weights are touched
    else if (cfg.span_end == 0) cfg.span_end = m.model->config().n_layer;
    if (!cfg.relay_only) m.weights = std::make_shared<const engine::SpanWeights>(m.model, cfg.span_start, cfg.span_end);
    m.model_id = engine::model_id(*m.model);
    m.identity = cfg.identity ? *cfg.identity
                 : cfg.key_file.empty() ? net::Identity::generate() : net::Identity::load_or_create(cfg.key_file);
    m.link_opts.max_frame = cfg.max_frame;
    m.link_opts.swarm_key = cfg.swarm_key;  // private swarm: in and out links prove the key
    m.cfg = cfg;
    const auto [host, port] = split_host_port(cfg.listen);
    tcp::resolver resolver(m.io);
    const tcp::endpoint ep = *resolver.resolve(host, port).begin();
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen(1024);
    m.link_opts.punch_window = cfg.punch_window;  // links to relayed next hops try a direct path first
    reach_ = std::make_unique<NodeReach>(m.io, m.identity, m.link_opts, cfg, [this](asio::ip::tcp::socket s) {
        asio::co_spawn(impl_->io, impl_->serve_link(std::move(s)), asio::detached);
    });
    m.reach = reach_.get();
    if (!cfg.relay_only)
        m.compute = std::make_unique<ComputeQueue>(m.weights, cfg.threads, [this](ComputeDone d) {
            asio::post(impl_->io, [this, d = std::move(d)]() mutable { impl_->on_done(std::move(d)); });
        });
}

Node::~Node() {
    stop();
    impl_->compute.reset();
}

void Node::run() {
    Impl& m = *impl_;
    asio::co_spawn(m.io, m.accept_loop(), asio::detached);
    asio::co_spawn(m.io, m.idle_sweep(), asio::detached);
    auto guard = asio::make_work_guard(m.io);
    m.io.run();
}

void Node::stop() {
    impl_->stopping = true;
    asio::post(impl_->io, [this] {
        asio::error_code ec;
        impl_->acceptor.close(ec);
        impl_->io.stop();
    });
}

std::string Node::listen_address() const {
    const auto ep = impl_->acceptor.local_endpoint();
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string Node::node_id() const { return impl_->identity.id_hex(); }

const engine::SpanWeights& Node::weights() const { return *impl_->weights; }

Node::Stats Node::stats() const {
    Stats s = impl_->stats;
    s.batches = impl_->compute ? impl_->compute->batches() : 0;
    s.tokens = impl_->compute ? impl_->compute->tokens() : 0;
    return s;
}

}  // namespace llmn::node
