#include "client/remote_session.h"
#include "client/remote_session_impl.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <random>

#include "engine/model_id.h"
#include "engine/layer_span.h"
#include "engine/stages.h"
#include "net/link.h"
#include "net/wire_hidden.h"
#include "tensor/thread_pool.h"

namespace llmn::client {

std::vector<std::string> parse_route(const std::string& route) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= route.size()) {
        size_t j = route.find(',', i);
        if (j == std::string::npos) j = route.size();
        std::string hop = route.substr(i, j - i);
        if (hop.empty()) throw std::invalid_argument("--route has an empty entry: '" + route + "'");
        out.push_back(hop);
        i = j + 1;
    }
    return out;
}

RemoteSession::RemoteSession(std::shared_ptr<const engine::Model> model, const std::vector<std::string>& route, RemoteConfig cfg,
                             tensor::ThreadPool& pool)
    : impl_(std::make_unique<Impl>(model, cfg, pool)), cfg_(cfg) {
    Impl& m = *impl_;
    net::ensure_sodium();
    if (route.empty()) throw RemoteError("empty route");
    const net::Key32 model_id = engine::model_id(*model);
    const int n_layer = model->config().n_layer;
    const int n_local = cfg.local_layers;
    if (n_local < 0 || n_local >= n_layer)
        throw std::invalid_argument("local_layers " + std::to_string(n_local) + " is outside 0.." + std::to_string(n_layer - 1) +
                                    " (the model has " + std::to_string(n_layer) + " layers and the route must run at least one)");
    std::mt19937_64 rng(std::random_device{}());
    for (const std::string& addr : route) {
        Impl::Hop h;
        h.info.address = addr;
        m.hops.push_back(h);
        const size_t i = m.hops.size() - 1;
        net::LinkOptions link_opts;
        link_opts.swarm_key = cfg.swarm_key;  // private swarm: prove the key, refuse nodes without it
        link_opts.punch_window = cfg.punch_window;
        m.hops[i].link = m.run_sync(net::Link::connect(addr, m.identity, link_opts, cfg.pinned_identity(addr)), cfg.connect_timeout, m.name(i), addr);
        net::Message first = m.run_sync(m.hops[i].link->read(cfg.connect_timeout), cfg.connect_timeout, m.name(i), addr);
        const auto* ni = std::get_if<net::NodeInfo>(&first);
        if (!ni) throw RemoteError(m.name(i) + ": expected NODE_INFO first, got " + net::to_string(first), addr);
        Impl::Hop& hop = m.hops[i];
        hop.info.node_id = m.hops[i].link ? net::to_hex(hop.link->peer_identity().data(), 32) : "";
        hop.info.span_start = int(ni->span_start);
        hop.info.span_end = int(ni->span_end);
        hop.info.isa = ni->isa;
        if (ni->model_id != model_id)
            throw RemoteError(m.name(i) + " serves another model (id " + net::to_hex(ni->model_id.data(), 8) + "..., ours " +
                              net::to_hex(model_id.data(), 8) + "...)", addr);
        // Each hop runs from where the previous one stopped to the end of its span
        // (a node serves any sub-span of its own, so overlapping spans chain too).
        // The first hop continues after the client's own layers.
        const int expect = i == 0 ? n_local : m.hops[i - 1].info.span_end;
        if (hop.info.span_start > expect || hop.info.span_end <= expect || hop.info.span_end > n_layer)
            throw RemoteError(m.name(i) + " serves layers " + std::to_string(hop.info.span_start) + ":" +
                              std::to_string(hop.info.span_end) + ": the route does not continue at layer " + std::to_string(expect) +
                              (i == 0 && n_local > 0 ? " (this client runs layers 0:" + std::to_string(n_local) + " itself, --local-layers)" : ""),
                              addr);
        hop.info.span_start = expect;
        do hop.session_id = rng(); while (hop.session_id == 0);
        m.start_reader(i);
    }
    if (m.hops.back().info.span_end != n_layer)
        throw RemoteError("route ends at layer " + std::to_string(m.hops.back().info.span_end) + " of " + std::to_string(n_layer));
    for (const auto& h : m.hops) m.hop_infos.push_back(h.info);
    if (n_local > 0) m.local = std::make_unique<engine::LayerSpan>(model, 0, n_local, cfg.n_ctx);
    bool audited = false;  // some hop has a replica (client/audit.h)
    if (cfg.verify_rate > 0)
        for (const std::string& a : cfg.auditors) audited = audited || !a.empty();
    // Open from the last hop back, so each next hop knows the session first.
    for (size_t k = m.hops.size(); k-- > 0;) {
        net::OpenSession o;
        o.session_id = m.hops[k].session_id;
        o.model_id = model_id;
        o.span_start = uint32_t(m.hops[k].info.span_start);
        o.span_end = uint32_t(m.hops[k].info.span_end);
        o.max_tokens = uint32_t(cfg.n_ctx);
        o.wire_dtype = uint8_t(cfg.wire_f32 ? net::WireDType::f32 : net::WireDType::f16);
        if (k + 1 < m.hops.size()) {
            o.next_hop = m.hops[k + 1].info.address;
            o.next_session_id = m.hops[k + 1].session_id;
            o.next_hop_id = m.hops[k + 1].link->peer_identity();  // the node must reach the key we reached there
        }
        if (k > 0) o.prev_hop = m.hops[k - 1].link->peer_identity();
        // Receipts from every hop (each hop's input is the one before's output), with KV rows when sampled.
        o.audit = audited ? (cfg.verify_every ? 1 : 2) : 0;
        m.send(k, o);
        const uint64_t sid = o.session_id;
        m.wait_for(k, [sid](const net::Message& msg) {
            const auto* op = std::get_if<net::Opened>(&msg);
            return op && op->session_id == sid;
        }, cfg.connect_timeout, "OPENED");
    }
    if (audited) m.open_audits(model_id);
}

RemoteSession::~RemoteSession() {
    Impl& m = *impl_;
    for (size_t i = 0; i < m.hops.size(); ++i) {
        if (m.hops[i].dead || !m.hops[i].link || !m.hops[i].link->is_open()) continue;
        try {
            m.send(i, net::Close{m.hops[i].session_id});
        } catch (...) {
        }
        m.hops[i].link->close(net::Errc::closed);
    }
    // Let the closes finish before the io_context goes.
    m.io.restart();
    m.io.run_for(std::chrono::milliseconds(50));
}

int RemoteSession::n_vocab() const { return impl_->model->config().n_vocab; }

int RemoteSession::verified() const {
    const Impl& m = *impl_;
    return m.book ? int(std::min<uint32_t>(uint32_t(n_past_), m.book->verified())) : n_past_;
}

void RemoteSession::settle() { impl_->settle_audits(); }

uint64_t RemoteSession::positions_audited() const { return impl_->book ? impl_->book->positions_checked() : 0; }
double RemoteSession::audit_max_error() const { return impl_->book ? impl_->book->max_error() : 0; }
double RemoteSession::audit_mean_error() const { return impl_->book ? impl_->book->mean_error() : 0; }
const std::vector<HopInfo>& RemoteSession::hops() const { return impl_->hop_infos; }

void RemoteSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    Impl& m = *impl_;
    if (m.broken) throw RemoteError("the session failed earlier; open a new one");
    m.raise_fault();
    const int n = int(ids.size());
    const int64_t d = m.model->config().n_embd, nv = m.model->config().n_vocab;
    if (n == 0) throw std::invalid_argument("eval of an empty token list");
    if (n_past_ + n > cfg_.n_ctx)
        throw std::out_of_range("context full: " + std::to_string(n_past_ + n) + " tokens > n_ctx " + std::to_string(cfg_.n_ctx));
    logits.resize(all_positions ? size_t(n) * nv : size_t(nv));
    const net::WireDType wire = cfg_.wire_f32 ? net::WireDType::f32 : net::WireDType::f16;
    std::vector<float> hidden;
    const size_t last = m.hops.size() - 1;
    for (int b = 0; b < n; b += cfg_.n_batch) {
        const int k = std::min(cfg_.n_batch, n - b);
        hidden.resize(size_t(k) * d);
        m.embed.embed(ids.data() + b, k, hidden.data());  // [k, d]
        const uint32_t pos = uint32_t(n_past_);
        if (m.local) m.local->forward(hidden.data(), k, int(pos), m.pool);  // [k, d] after layers 0:local_layers
        m.pool.park();  // the hops compute now: leave them the cores
        const auto t_sent = std::chrono::steady_clock::now();
        std::vector<uint8_t> bytes = net::pack_hidden(hidden.data(), hidden.size(), wire);
        if (m.book) m.book->on_sent(pos, uint32_t(k), uint8_t(wire), bytes);
        m.send(0, net::Step{m.hops[0].session_id, pos, uint32_t(k), uint8_t(wire), std::move(bytes), {}});
        const uint64_t sid = m.hops[last].session_id;
        net::Message msg = m.wait_for(last, [sid, pos](const net::Message& r) {
            const auto* res = std::get_if<net::Result>(&r);
            return res && res->session_id == sid && res->pos == pos;
        }, cfg_.step_timeout, "RESULT");
        const auto t_back = std::chrono::steady_clock::now();
        m.pool.wake();  // the head comes next: workers wake while we unpack
        auto& res = std::get<net::Result>(msg);
        if (int(res.n_tokens) != k)
            throw RemoteError(m.name(last) + ": RESULT has " + std::to_string(res.n_tokens) + " tokens, sent " + std::to_string(k), m.hops[last].info.address);
        try {
            net::unpack_hidden(res.hidden, res.dtype, hidden.size(), hidden.data());
        } catch (const std::exception& e) {
            m.broken = true;
            throw RemoteError(m.name(last) + ": " + e.what(), m.hops[last].info.address);
        }
        n_past_ += k;
        m.n_past = n_past_;
        if (m.book) {
            m.book->on_result(pos, std::move(res.hidden));
            m.audit_after_step(false);
        }
        if (all_positions) {
            m.head.logits(hidden.data(), k, logits.data() + size_t(b) * nv, m.pool);
        } else if (b + k == n) {
            m.head.logits(hidden.data() + size_t(k - 1) * d, 1, logits.data(), m.pool);
        }
        static const bool trace = std::getenv("LLM_NODE_TRACE_STEPS") != nullptr;  // bench/pipeline_trace.py
        if (trace)
            std::fprintf(stderr, "[trace] client pos %u sent %lld back %lld done %lld\n", pos,
                         (long long)t_sent.time_since_epoch().count(), (long long)t_back.time_since_epoch().count(),
                         (long long)std::chrono::steady_clock::now().time_since_epoch().count());
    }
    m.raise_fault();
}

}  // namespace llmn::client
