#include "node/node.h"

#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "engine/layer_span.h"
#include "net/link.h"
#include "net/wire_hidden.h"
#include "node/compute_queue.h"

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
    };
    std::unordered_map<uint64_t, Session> sessions;
    std::map<std::string, std::shared_ptr<net::Link>> next_links;  // by address
    uint64_t kv_bytes = 0;
    Stats stats;
    std::atomic<bool> stopping{false};

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
        return ni;
    }

    awaitable<std::shared_ptr<net::Link>> next_link(const std::string& addr) {
        auto it = next_links.find(addr);
        if (it != next_links.end() && it->second->is_open()) co_return it->second;
        auto link = co_await net::Link::connect(addr, identity, link_opts);
        next_links[addr] = link;
        // Drain what the next hop sends us (it reports session errors to their owners).
        asio::co_spawn(io, [link]() -> awaitable<void> {
            for (;;) {
                net::Message m = co_await link->read();
                (void)m;
            }
        }, [](std::exception_ptr) {});
        co_return link;
    }

    awaitable<void> on_open(const std::shared_ptr<net::Link>& link, const net::OpenSession& o) {
        auto fail = [&](net::Errc c, const std::string& t) { send_error(link, o.session_id, c, t); };
        if (o.model_id != model_id) co_return fail(net::Errc::wrong_model, "this node serves model " + net::to_hex(model_id.data(), 8) + "...");
        // Any sub-span of ours: routes over nodes with overlapping spans use part of one.
        if (int(o.span_start) < cfg.span_start || int(o.span_end) > cfg.span_end || o.span_start >= o.span_end)
            co_return fail(net::Errc::bad_span, "this node serves layers " + std::to_string(cfg.span_start) + ":" + std::to_string(cfg.span_end));
        if (o.session_id == 0 || sessions.count(o.session_id)) co_return fail(net::Errc::bad_message, "session id in use");
        if (o.max_tokens == 0 || int64_t(o.max_tokens) > cfg.max_ctx)
            co_return fail(net::Errc::overloaded, "max_tokens must be 1.." + std::to_string(cfg.max_ctx));
        if (o.wire_dtype > uint8_t(net::WireDType::f16)) co_return fail(net::Errc::bad_message, "unknown wire dtype");
        const int first = int(o.span_start) - cfg.span_start, last = int(o.span_end) - cfg.span_start;
        const uint64_t need = engine::KvCache::bytes_for(*weights, int(o.max_tokens), last - first);
        if (int(sessions.size()) >= cfg.max_sessions) co_return fail(net::Errc::overloaded, "session limit reached");
        if (kv_bytes + need > cfg.max_memory) co_return fail(net::Errc::overloaded, "memory limit reached");
        Session s;
        s.id = o.session_id;
        s.owner = link;
        s.prev_hop = o.prev_hop;
        s.wire = net::WireDType(o.wire_dtype);
        s.last_active = Clock::now();
        if (!o.next_hop.empty()) {
            try {
                s.next = co_await next_link(o.next_hop);
            } catch (const std::exception& e) {
                co_return fail(net::Errc::next_hop_failed, "next hop " + o.next_hop + ": " + e.what());
            }
            s.next_addr = o.next_hop;
            s.next_session_id = o.next_session_id;
        }
        s.first = first;
        s.last = last;
        s.cache = std::make_shared<engine::KvCache>(*weights, int(o.max_tokens), last - first);
        kv_bytes += s.cache->bytes();
        const uint64_t sid = s.id;
        sessions.emplace(sid, std::move(s));
        ++stats.sessions_opened;
        stats.active_sessions = int(sessions.size());
        send(link, net::Opened{sid, o.max_tokens});
    }

    void on_step(const std::shared_ptr<net::Link>& link, net::Step& st) {
        auto it = sessions.find(st.session_id);
        const bool allowed = it != sessions.end() &&
                             (it->second.owner.lock() == link || (it->second.prev_hop != net::Key32{} && it->second.prev_hop == link->peer_identity()));
        if (!allowed) return send_error(link, st.session_id, net::Errc::unknown_session, "no such session on this link");
        Session& s = it->second;
        s.last_active = Clock::now();
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
        try {
            net::unpack_hidden(st.hidden, st.dtype, job.hidden.size(), job.hidden.data());
        } catch (const net::NetError& e) {
            return send_error(owner, s.id, e.code(), e.what());
        }
        ++stats.steps;
        compute->push(std::move(job));
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
        if (s.next) {
            if (!s.next->is_open())
                return send_error(owner, s.id, net::Errc::next_hop_failed, "link to next hop " + s.next_addr + " is closed");
            send(s.next, net::Step{s.next_session_id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        } else {
            send(owner, net::Result{s.id, uint32_t(done.pos), uint32_t(done.n_tokens), dt, std::move(bytes)});
        }
    }

    awaitable<void> serve_link(tcp::socket socket) {
        std::shared_ptr<net::Link> link;
        std::string peer = "?";
        try {
            peer = socket.remote_endpoint().address().to_string() + ":" + std::to_string(socket.remote_endpoint().port());
            link = co_await net::Link::accept(std::move(socket), identity, link_opts);
            co_await link->write(info());
            for (;;) {
                net::Message m = co_await link->read();
                if (auto* o = std::get_if<net::OpenSession>(&m)) {
                    co_await on_open(link, *o);
                } else if (auto* st = std::get_if<net::Step>(&m)) {
                    on_step(link, *st);
                } else if (auto* c = std::get_if<net::Close>(&m)) {
                    auto it = sessions.find(c->session_id);
                    if (it != sessions.end() && it->second.owner.lock() == link) drop_session(c->session_id);
                } else if (auto* p = std::get_if<net::Ping>(&m)) {
                    send(link, net::Pong{p->nonce});
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
                continue;  // e.g. EMFILE: keep serving the links we have
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
        }
    }
};

Node::Node(NodeConfig cfg) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    net::ensure_sodium();
    m.model = engine::Model::load(cfg.model_path);
    if (cfg.span_end == 0) cfg.span_end = m.model->config().n_layer;
    m.weights = std::make_shared<const engine::SpanWeights>(m.model, cfg.span_start, cfg.span_end);
    m.model_id = net::digest256(m.model->file().header_bytes());
    m.identity = cfg.key_file.empty() ? net::Identity::generate() : net::Identity::load_or_create(cfg.key_file);
    m.link_opts.max_frame = cfg.max_frame;
    m.cfg = cfg;
    const auto [host, port] = split_host_port(cfg.listen);
    tcp::resolver resolver(m.io);
    const tcp::endpoint ep = *resolver.resolve(host, port).begin();
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen(1024);
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
    s.batches = impl_->compute->batches();
    s.tokens = impl_->compute->tokens();
    return s;
}

}  // namespace llmn::node
