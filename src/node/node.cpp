#include "node/node.h"

#include <asio/experimental/as_tuple.hpp>
#include <cstdio>
#include <cstdlib>

#include "engine/model_id.h"
#include "model/model_summary.h"
#include "net/probe.h"
#include "net/wire_hidden.h"
#include "node/node_impl.h"
#include "net/audit.h"
#include "tensor/kernels.h"

namespace llmn::node {

using asio::ip::tcp;

namespace {

std::pair<std::string, std::string> split_host_port(const std::string& hp) {
    const auto colon = hp.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size())
        throw std::invalid_argument("address '" + hp + "' is not host:port");
    return {hp.substr(0, colon), hp.substr(colon + 1)};
}

std::string ip_of(const std::string& hp) { return hp.substr(0, hp.rfind(':')); }

constexpr int kInlineMaxTokens = 4;                 // steps this small may run on the io thread
constexpr size_t kMaxNextLinks = 256;               // outgoing links to next hops
constexpr auto kNextLinkIdle = std::chrono::seconds(60);  // an outgoing link no session or circuit uses closes
// Back-pressure: a link's reader waits while this much is queued towards its peer,
// or this much of what it sent waits for the compute thread (all links: 4x).
constexpr size_t kMaxQueuedToPeer = size_t(8) << 20;
constexpr uint64_t kMaxComputeBytesPerLink = uint64_t(32) << 20;

}  // namespace

void log_line(const std::string& s) { std::fprintf(stderr, "[node] %s\n", s.c_str()); }

void Node::Impl::send(const std::shared_ptr<net::Link>& link, net::Message m) {
    if (!link || !link->is_open()) return;
    asio::co_spawn(io, [link, m = std::move(m)]() -> awaitable<void> { co_await link->write(m); }, [](std::exception_ptr) {});
}

void Node::Impl::send_error(const std::shared_ptr<net::Link>& link, uint64_t sid, net::Errc code, const std::string& text) {
    send(link, net::Error{sid, uint16_t(code), text});
}

void Node::Impl::drop_session(uint64_t sid) {
    auto it = sessions.find(sid);
    if (it == sessions.end()) return;
    kv_bytes -= it->second.cache->bytes();
    sessions.erase(it);
    stats.active_sessions = int(sessions.size());
}

net::NodeInfo Node::Impl::info() const {
    net::NodeInfo ni;
    ni.model_id = model_id;
    ni.n_layer = uint32_t(model->config().n_layer);
    ni.span_start = uint32_t(cfg.span_start);
    ni.span_end = uint32_t(cfg.span_end);
    ni.free_sessions = uint32_t(std::max<int>(0, cfg.max_sessions - int(sessions.size()) - reserved_sessions));
    ni.version = "llm-node/0.1";
    ni.milli_tokens_per_s = uint32_t(std::min(4e9, cfg.tokens_per_s * 1000.0));
    ni.onion_key = onion.pk;
    ni.torrent = cfg.torrent;
    ni.torrent_port = cfg.torrent_port;
    ni.model_name = model_name;
    ni.model_quant = model_quant;
    ni.model_bytes = model->file().file_size();
    ni.isa = uint8_t(int(tensor::active_isa()) + 1);
    ni.isa_set = tensor::supported_isa_mask();
    reach->fill(ni);
    net::sign_node_info(ni, identity);
    return ni;
}

// A link to a next hop that must prove `expected` (zeros: whoever answers, for
// routes the client did not pin). Only addresses the dial policy allows, at a
// bounded rate per asking peer; the link is shared by every session and circuit
// going there and closes when none has used it for a minute.
awaitable<std::shared_ptr<net::Link>> Node::Impl::next_link(const std::string& addr, const net::Key32& expected, const net::Link& asked_by) {
    const std::string key = addr + "#" + net::to_hex(expected.data(), expected.size());
    const auto now = Clock::now();
    auto it = next_links.find(key);
    if (it != next_links.end() && it->second.link->is_open()) {
        it->second.last_used = now;
        co_return it->second.link;
    }
    if (const std::string why = dial_policy.refusal(addr, ip_of(asked_by.peer_address())); !why.empty())
        throw net::NetError(net::Errc::next_hop_failed, "will not dial " + why);
    if (!dial_policy.take(ip_of(asked_by.peer_address()), now)) throw net::NetError(net::Errc::overloaded, "too many new next hops from this peer");
    if (next_links.size() >= kMaxNextLinks) close_idle_next_links(now);
    if (next_links.size() >= kMaxNextLinks) throw net::NetError(net::Errc::overloaded, "too many next-hop links");
    const std::optional<net::Key32> pin = expected == net::Key32{} ? std::nullopt : std::optional<net::Key32>(expected);
    auto link = co_await net::Link::connect(addr, identity, link_opts, pin);
    next_links[key] = {link, Clock::now()};
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

void Node::Impl::close_idle_next_links(Clock::time_point now) {
    for (auto it = next_links.begin(); it != next_links.end();) {
        const auto& link = it->second.link;
        bool used = false;
        for (const auto& [sid, s] : sessions) used = used || s.next == link;
        for (const auto& [cid, c] : circuits) used = used || c.next == link;
        if (used) it->second.last_used = now;
        if (!link->is_open() || (!used && now - it->second.last_used > kNextLinkIdle)) {
            link->close(net::Errc::timeout, "idle");
            it = next_links.erase(it);
        } else {
            ++it;
        }
    }
}

// Checks a session request against what this node serves and its caps (sessions
// open and those reserved by opens still dialing); an error text, or "" when a
// session with these settings fits. *kv_need gets the KV cache bytes it takes.
std::string Node::Impl::session_refusal(uint64_t sid, const net::Key32& mid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire,
                                        net::Errc& code, uint64_t* kv_need) const {
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
    if (kv_need) *kv_need = need;
    if (int(sessions.size()) + reserved_sessions >= cfg.max_sessions) return code = net::Errc::overloaded, "session limit reached";
    if (kv_bytes + reserved_kv + need > cfg.max_memory) return code = net::Errc::overloaded, "memory limit reached";
    return "";
}


Node::Impl::Session& Node::Impl::add_session(const std::shared_ptr<net::Link>& owner, uint64_t sid, uint32_t start, uint32_t end, uint32_t max_tokens, uint8_t wire) {
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

awaitable<void> Node::Impl::on_open(const std::shared_ptr<net::Link>& link, const net::OpenSession& o) {
    net::Errc code;
    uint64_t kv_need = 0;
    const std::string why = session_refusal(o.session_id, o.model_id, o.span_start, o.span_end, o.max_tokens, o.wire_dtype, code, &kv_need);
    if (!why.empty()) co_return send_error(link, o.session_id, code, why);
    if (o.isa > 3 || (o.isa && !tensor::isa_supported(tensor::Isa(o.isa - 1))))
        co_return send_error(link, o.session_id, net::Errc::bad_message, "this node cannot run the kernel set asked for");
    if (o.audit > 2) co_return send_error(link, o.session_id, net::Errc::bad_message, "unknown audit mode " + std::to_string(o.audit));
    std::shared_ptr<net::Link> next;
    if (!o.next_hop.empty()) {
        Reservation hold(*this, kv_need);  // opens racing through this await see it in the caps
        try {
            next = co_await next_link(o.next_hop, o.next_hop_id, *link);
        } catch (const std::exception& e) {
            co_return send_error(link, o.session_id, net::Errc::next_hop_failed, "next hop " + o.next_hop + ": " + e.what());
        }
    }
    if (!link->is_open()) co_return;
    if (sessions.count(o.session_id)) co_return send_error(link, o.session_id, net::Errc::bad_message, "session id in use");
    Session& s = add_session(link, o.session_id, o.span_start, o.span_end, o.max_tokens, o.wire_dtype);
    s.prev_hop = o.prev_hop;
    s.next = next;
    s.next_addr = o.next_hop;
    s.next_session_id = o.next_session_id;
    s.audit = o.audit != 0;
    s.audit_kv = o.audit == 2;
    s.isa = int(o.isa) - 1;
    send(link, net::Opened{o.session_id, o.max_tokens});
}


void Node::Impl::on_step(const std::shared_ptr<net::Link>& link, net::Step& st) {
    auto it = sessions.find(st.session_id);
    const bool allowed = it != sessions.end() &&
                         (it->second.owner.lock() == link || (it->second.prev_hop != net::Key32{} && it->second.prev_hop == link->peer_identity()));
    if (!allowed) return send_error(link, st.session_id, net::Errc::unknown_session, "no such session on this link");
    Session& s = it->second;
    s.last_active = s.last_step = Clock::now();
    const int d = model->config().n_embd;
    auto owner = s.owner.lock();
    if (!replay_fits(s, *link, st)) return send_error(owner, s.id, net::Errc::bad_message, "a replay whose KV rows do not fit this session");
    if ((st.n_tokens == 0 && st.kv.empty()) || st.n_tokens > 4096)
        return send_error(owner, s.id, net::Errc::bad_message, "step of " + std::to_string(st.n_tokens) + " tokens");
    // Sizes before any allocation: a 30-byte STEP must not make us zero n_tokens x n_embd floats.
    const size_t per_value = st.dtype == uint8_t(net::WireDType::f32) ? 4 : st.dtype == uint8_t(net::WireDType::f16) ? 2 : 0;
    if (per_value == 0) return send_error(owner, s.id, net::Errc::bad_message, "unknown wire dtype " + std::to_string(st.dtype));
    if (st.hidden.size() != size_t(st.n_tokens) * size_t(d) * per_value)
        return send_error(owner, s.id, net::Errc::bad_message,
                          "STEP of " + std::to_string(st.n_tokens) + " tokens carries " + std::to_string(st.hidden.size()) + " bytes, expected " +
                              std::to_string(size_t(st.n_tokens) * size_t(d) * per_value));
    if (int64_t(st.pos) + st.n_tokens > s.cache->n_ctx())
        return send_error(owner, s.id, net::Errc::bad_message,
                          "positions " + std::to_string(st.pos) + "+" + std::to_string(st.n_tokens) + " exceed the session's " +
                              std::to_string(s.cache->n_ctx()));
    ComputeJob job;
    job.session_id = s.id;
    job.cache = s.cache;
    job.pos = int(st.pos);
    job.n_tokens = int(st.n_tokens);
    job.first = s.first;
    job.last = s.last;
    job.isa = s.isa;
    job.exact = s.audit;
    job.want_kv = s.audit_kv;
    job.kv_from = int(st.kv_from);
    job.kv = std::move(st.kv);
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
    if (st.n_tokens > 0 && !note_step_in(s, link, st)) return;
    ++stats.steps;
    if (!s.in_steps.empty() && s.in_steps.back().fault && fault->mode() == FaultHook::Mode::identity)
        return on_done(ComputeDone{s.id, job.pos, job.n_tokens, std::move(job.hidden), "", job.t_arrived, 0, 0});
    // A step of this session still in the compute thread or its finished output not yet
    // sent (on_done is posted to this thread): running this one inline would overtake it.
    const bool session_idle = s.in_compute_bytes == 0;
    job.charged = job.hidden.size() * sizeof(float) + job.kv.size();
    s.in_compute_bytes += job.charged;  // until on_done
    s.step_link = link.get();
    // A lone session's decode step runs right here (nothing to batch it with, and two
    // thread hand-offs fewer per hop); while other sessions step, it joins the batches.
    // Prompt chunks always go to the compute thread: the io thread must not stop
    // answering pings, probes and opens for the seconds a long prompt takes.
    if (job.n_tokens <= kInlineMaxTokens && session_idle && !others_stepping(s))
        if (std::optional<ComputeDone> done = compute->try_run_inline(job)) return on_done(std::move(*done));
    compute->push(std::move(job));
}



// Another session stepped in the last second, and its client is still there (a
// finished session whose link just closed waits up to a second for the sweep).
bool Node::Impl::others_stepping(const Session& self) const {
    const auto recent = Clock::now() - std::chrono::seconds(1);
    for (const auto& [sid, s] : sessions)
        if (&s != &self && s.last_step > recent && !s.owner.expired()) return true;
    return false;
}

// Runs on the io thread when the compute thread finished a job.
void Node::Impl::on_done(ComputeDone done) {
    auto it = sessions.find(done.session_id);
    if (it == sessions.end()) return;  // closed meanwhile
    Session& s = it->second;
    s.in_compute_bytes -= std::min<uint64_t>(s.in_compute_bytes, done.charged);
    auto owner = s.owner.lock();
    if (!done.error.empty()) return send_error(owner, s.id, net::Errc::compute_failed, done.error);
    if (done.n_tokens == 0) return;  // a replay's rows, loaded
    const std::optional<Session::InStep> in = take_step_in(s, done.pos);
    if (in && in->fault && fault->mode() == FaultHook::Mode::noise) fault->add_noise(done.hidden.data(), done.n_tokens, model->config().n_embd);
    if (in && in->fault && fault->mode() == FaultHook::Mode::stale) fault->swap_stale(done.hidden);
    std::vector<uint8_t> bytes = net::pack_hidden(done.hidden.data(), done.hidden.size(), s.wire);
    const uint8_t dt = uint8_t(s.wire);
    const bool audited = s.audit && in && !circuits.count(s.id);
    const net::Key32 out_digest = audited ? net::hidden_digest(bytes) : net::Key32{};
    if (auto c = circuits.find(s.id); c != circuits.end())
        return circuit_output(c->second, net::Step{0, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
    const int64_t t_send = steady_ns();
    if (s.next) {
        if (!s.next->is_open())
            return send_error(owner, s.id, net::Errc::next_hop_failed, "link to next hop " + s.next_addr + " is closed");
        net::Step out{s.next_session_id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, {}, {}};
        if (audited) {
            const auto t = net::commit_statement(out.session_id, out.pos, out.n_tokens, dt, out_digest);
            out.commit = identity.sign(t.data(), t.size());
            out.hidden = bytes;  // the receipt sends them to the owner too
        } else {
            out.hidden = std::move(bytes);
        }
        send(s.next, std::move(out));
        if (audited) send_receipt(s, owner, *in, done, dt, out_digest, std::move(bytes));
    } else {
        send(owner, net::Result{s.id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        if (audited) send_receipt(s, owner, *in, done, dt, out_digest, {});  // the owner has the bytes in the RESULT
    }
    // Latency tracing (bench/pipeline_trace.py): when the step arrived, ran, finished and was sent.
    static const bool trace = std::getenv("LLM_NODE_TRACE_STEPS") != nullptr;
    if (trace)
        std::fprintf(stderr, "[trace] hop %d:%d pos %d arrived %lld started %lld finished %lld sent %lld\n", cfg.span_start + s.first,
                     cfg.span_start + s.last, done.pos, (long long)done.t_arrived, (long long)done.t_started,
                     (long long)done.t_finished, (long long)t_send);
}


// Back-pressure: before reading more from `link`, wait while its peer has not
// read what we queued for it, or while its steps still wait for the compute
// thread. False when that lasts longer than the write timeout: the peer is not
// reading, and loses its link.
awaitable<bool> Node::Impl::wait_for_room(const std::shared_ptr<net::Link>& link) {
    auto busy = [&] {
        if (link->queued_bytes() > kMaxQueuedToPeer) return true;
        uint64_t mine = 0, all = 0;
        for (const auto& [sid, s] : sessions) {
            all += s.in_compute_bytes;
            if (s.step_link == link.get()) mine += s.in_compute_bytes;
        }
        return mine > kMaxComputeBytesPerLink || all > 4 * kMaxComputeBytesPerLink;
    };
    if (!busy()) co_return true;
    const auto deadline = Clock::now() + std::max<std::chrono::milliseconds>(link_opts.write_timeout, std::chrono::seconds(1));
    asio::steady_timer t(io);
    while (busy()) {
        if (Clock::now() > deadline || !link->is_open() || stopping) co_return false;
        t.expires_after(std::chrono::milliseconds(2));
        co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    co_return true;
}

awaitable<void> Node::Impl::serve_link(tcp::socket socket) {
    std::shared_ptr<net::Link> link;
    std::string peer = "?";
    try {
        peer = socket.remote_endpoint().address().to_string() + ":" + std::to_string(socket.remote_endpoint().port());
        link = co_await net::Link::accept(std::move(socket), identity, link_opts);
        static const bool log_links = std::getenv("LLM_NODE_CIRCUIT_LOG") != nullptr;  // the privacy tests: who connects to a span
        if (log_links) log_line("accepted link from " + peer + " key " + net::to_hex(link->peer_identity().data(), 6));
        co_await link->write(info());
        inbound[link.get()] = {link, Clock::now()};
        for (;;) {
            if (!co_await wait_for_room(link)) {
                link->close(net::Errc::overloaded, "peer does not read what this node sends");
                break;
            }
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
                on_join(link, *j);
            } else if (auto* c = std::get_if<net::Close>(&m)) {
                auto ci = circuits.find(c->session_id);
                auto it = sessions.find(c->session_id);
                if (ci != circuits.end() && ci->second.prev.lock() == link) close_circuit(c->session_id, true);
                else if (it != sessions.end() && it->second.owner.lock() == link) drop_session(c->session_id);
            } else if (auto* pr = std::get_if<net::ProbeRequest>(&m)) {
                on_probe_request(link, *pr);
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
    if (link) link_closed(link);
}

void Node::Impl::link_closed(const std::shared_ptr<net::Link>& link) {
    inbound.erase(link.get());
    reach->relay.on_closed(link.get());
    // Circuits coming in on this link end with it (and tell the rest of the ring).
    std::vector<uint64_t> gone;
    for (auto& [cid, c] : circuits)
        if (c.prev.lock() == link || c.prev.expired()) gone.push_back(cid);
    for (uint64_t cid : gone) close_circuit(cid, true);
    for (auto it = joined.begin(); it != joined.end();) it = it->second.link.lock() == link || it->second.link.expired() ? joined.erase(it) : std::next(it);
    // Sessions owned by this link end with it.
    std::vector<uint64_t> owned;
    for (auto& [sid, s] : sessions) {
        if (s.owner.lock() == link || s.owner.expired()) owned.push_back(sid);
        if (s.step_link == link.get()) s.step_link = nullptr;
    }
    for (uint64_t sid : owned) drop_session(sid);
    link->close(net::Errc::closed);
}

awaitable<void> Node::Impl::accept_loop() {
    const asio::ip::address own = acceptor.local_endpoint().address();
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
        // Handshakes per source IP are capped; connections from this machine's own
        // listening address (one-machine swarms, tests) are not.
        asio::error_code rec;
        const asio::ip::address from = socket.remote_endpoint(rec).address();
        if (rec) continue;
        if (from == own) {
            asio::co_spawn(io, serve_link(std::move(socket)), asio::detached);
            continue;
        }
        const std::string ip = from.to_string();
        if (!handshakes->admit(ip, Clock::now())) continue;  // closed unanswered: the socket goes out of scope
        asio::co_spawn(io, [this, ip, s = std::move(socket)]() mutable -> awaitable<void> {
            struct Done {  // owns a share of the limiter: it may outlive the node's io
                std::shared_ptr<HandshakeLimiter> h;
                std::string ip;
                bool released = false;
                void release() {
                    if (!released) h->done(ip);
                    released = true;
                }
                ~Done() { release(); }
            };
            std::shared_ptr<Done> done(new Done{handshakes, ip});  // no temporary: its destructor would release
            // The cap counts handshakes: serve_link's first await is the handshake, then NODE_INFO.
            asio::co_spawn(io, [this, done]() -> awaitable<void> {
                asio::steady_timer t(io, link_opts.handshake_timeout);
                co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                done->release();
            }, asio::detached);
            co_await serve_link(std::move(s));
            done->release();
        }, asio::detached);
    }
}

awaitable<void> Node::Impl::idle_sweep() {
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
        close_idle_next_links(now);
        expire_joins(now);
    }
}

// A peer that sends nothing, or stalls inside a frame, for longer than a session may idle
// loses its link, so it cannot hold an fd and a buffer forever. A link stays while it owns
// a session that is active: a route's client sends nothing on it while steps come in
// through the previous hop.
void Node::Impl::close_silent_links(Clock::time_point now) {
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


Node::Node(NodeConfig cfg) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    net::ensure_sodium();
    m.model = engine::Model::load(cfg.model_path);
    if (cfg.relay_only) cfg.span_start = cfg.span_end = 0;  // advertised as 0:0; no weights are touched
    else if (cfg.span_end == 0) cfg.span_end = m.model->config().n_layer;
    if (!cfg.relay_only) m.weights = std::make_shared<const engine::SpanWeights>(m.model, cfg.span_start, cfg.span_end);
    m.model_id = engine::model_id(*m.model);
    {
        const model::ModelSummary sum = model::summarize_model(m.model->file());
        m.model_name = sum.name;
        m.model_quant = sum.quantization;
    }
    m.identity = cfg.identity ? *cfg.identity
                 : cfg.key_file.empty() ? net::Identity::generate() : net::Identity::load_or_create(cfg.key_file);
    if (m.fault)
        std::fprintf(stderr, "llm-node: LLM_NODE_FAULT is set: this node returns wrong hidden states on purpose (%s); for tests only\n",
                     m.fault->describe().c_str());
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
    // Outgoing links leave from the address we listen on (one IP per node, also on one machine).
    if (!ep.address().is_unspecified()) m.link_opts.bind_ip = ep.address();
    m.dial_policy = dial_policy_for(host, cfg.swarm_key.has_value(), cfg.allow_private_hops);
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
