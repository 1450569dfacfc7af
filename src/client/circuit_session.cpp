#include "client/circuit_session.h"

#include <deque>
#include <optional>

#include "engine/model_id.h"
#include "engine/layer_span.h"
#include "engine/stages.h"
#include "net/link.h"
#include "net/onion.h"
#include "net/probe.h"
#include "net/wire_hidden.h"
#include "tensor/thread_pool.h"

namespace llmn::client {

using Clock = std::chrono::steady_clock;

struct CircuitSession::Impl {
    asio::io_context io{1};
    // Fresh per circuit, and one per end: colluding entry and exit relays cannot pair the two links by key.
    net::Identity entry_identity = net::Identity::generate(), exit_identity = net::Identity::generate();
    std::shared_ptr<const engine::Model> model;
    engine::EmbeddingStage embed;
    engine::HeadStage head;
    tensor::ThreadPool& pool;
    RemoteConfig cfg;
    std::unique_ptr<engine::LayerSpan> local;
    std::shared_ptr<net::Link> entry, exit;  // may be the same link
    std::deque<std::pair<net::Link*, net::Message>> inbox;
    std::string dead;  // why a link died
    uint64_t entry_id = 0, cookie = 0;
    net::Key32 key_in{}, key_out{};
    uint64_t seq_in = 0, seq_out = 0;
    bool broken = false;

    Impl(std::shared_ptr<const engine::Model> m, RemoteConfig c, tensor::ThreadPool& p) : model(m), embed(m), head(m), pool(p), cfg(c) {}

    template <class Pred>
    bool pump(Pred done, Clock::time_point deadline) {
        while (!done()) {
            if (io.stopped()) io.restart();
            if (io.run_one_until(deadline) == 0 && Clock::now() >= deadline) return false;
        }
        return true;
    }

    template <class T>
    T run_sync(asio::awaitable<T> a, const std::string& what) {
        std::optional<T> result;
        std::exception_ptr err;
        bool done = false;
        asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
            err = e;
            if (!e) result = std::move(v);
            done = true;
        });
        if (!pump([&] { return done; }, Clock::now() + cfg.connect_timeout)) throw RemoteError(what + ": no answer in time");
        if (err) {
            try {
                std::rethrow_exception(err);
            } catch (const std::exception& e) {
                throw RemoteError(what + ": " + e.what());
            }
        }
        return std::move(*result);
    }

    void start_reader(const std::shared_ptr<net::Link>& link, const std::string& name) {
        asio::co_spawn(io, [this, link, name]() -> asio::awaitable<void> {
            try {
                for (;;) inbox.emplace_back(link.get(), co_await link->read());
            } catch (const std::exception& e) {
                if (dead.empty()) dead = name + ": " + e.what();
            }
        }, asio::detached);
    }

    void send(const std::shared_ptr<net::Link>& link, net::Message m) {
        run_sync<bool>([](std::shared_ptr<net::Link> l, net::Message msg) -> asio::awaitable<bool> {
            co_await l->write(msg);
            co_return true;
        }(link, std::move(m)), "circuit send");
    }

    // The next message from `from` that `want` accepts; an ERROR from either end
    // (errors travel back along the ring) or a dead link breaks the circuit.
    template <class Want>
    net::Message wait_for(net::Link* from, Want want, std::chrono::milliseconds timeout, const std::string& what) {
        std::optional<net::Message> got;
        auto check = [&] {
            if (!dead.empty()) throw RemoteError("circuit broken: " + dead);
            while (!inbox.empty()) {
                auto [l, m] = std::move(inbox.front());
                inbox.pop_front();
                if (auto* e = std::get_if<net::Error>(&m))
                    throw RemoteError("circuit failed: " + std::string(net::errc_name(net::Errc(e->code))) + ": " + e->text);
                if (l == from && want(m)) {
                    got = std::move(m);
                    return true;
                }
            }
            return false;
        };
        try {
            if (!pump(check, Clock::now() + timeout)) throw RemoteError("circuit: no " + what + " within " + std::to_string(timeout.count()) + " ms");
        } catch (...) {
            broken = true;
            throw;
        }
        return std::move(*got);
    }
};

CircuitSession::CircuitSession(std::shared_ptr<const engine::Model> model, const CircuitPlan& plan, RemoteConfig cfg,
                               tensor::ThreadPool& pool)
    : impl_(std::make_unique<Impl>(model, cfg, pool)), cfg_(cfg) {
    Impl& m = *impl_;
    if (plan.spans.empty()) throw RemoteError("a circuit needs at least one span node");
    if (!plan.entry_relay.empty() && plan.entry_relay == plan.exit_relay) throw RemoteError("the entry and exit relays must differ");
    const net::Key32 model_id = engine::model_id(*model);
    const int n_layer = model->config().n_layer, n_local = cfg.local_layers;
    // The ring's members in order, and what each serves (NODE_INFO, with its onion key).
    std::vector<std::string> ring;
    if (!plan.entry_relay.empty()) ring.push_back(plan.entry_relay);
    ring.insert(ring.end(), plan.spans.begin(), plan.spans.end());
    if (!plan.exit_relay.empty()) ring.push_back(plan.exit_relay);
    const size_t first_span = plan.entry_relay.empty() ? 0 : 1, last_span = first_span + plan.spans.size() - 1;
    net::LinkOptions lo;
    lo.swarm_key = cfg.swarm_key;
    lo.punch_window = cfg.punch_window;
    std::vector<net::ProbedNode> info(ring.size());
    auto fill = [&](const std::vector<net::ProbedNode>& found) {
        for (const net::ProbedNode& p : found)
            for (size_t i = 0; i < ring.size(); ++i)
                if (ring[i] == p.address && info[i].address.empty()) info[i] = p;
    };
    fill(plan.known);
    std::vector<std::string> unknown;
    for (size_t i = 0; i < ring.size(); ++i)
        if (info[i].address.empty()) unknown.push_back(ring[i]);
    if (!unknown.empty()) {
        // Ask a relay (contacted anyway) about the others; with no relay the spans talk to us directly.
        const std::string directory = !plan.entry_relay.empty() ? plan.entry_relay : plan.exit_relay;
        if (directory.empty()) {
            fill(net::probe_nodes(unknown, std::chrono::milliseconds(cfg.connect_timeout), cfg.swarm_key));
        } else {
            std::vector<std::string> others;
            for (const std::string& a : unknown)
                if (a != directory) others.push_back(a);
            fill(net::probe_through(directory, others, std::chrono::milliseconds(cfg.connect_timeout), cfg.swarm_key).nodes);
        }
    }
    for (size_t i = 0; i < ring.size(); ++i) {
        if (info[i].address.empty()) throw RemoteError("circuit member " + ring[i] + " did not answer", ring[i]);
        if (const auto pin = cfg.pinned_identity(ring[i]); pin && *pin != info[i].identity)
            throw RemoteError("circuit member " + ring[i] + " is not the node expected there", ring[i]);
    }
    // Spans must chain from the client's own layers to the last layer.
    std::vector<std::pair<uint32_t, uint32_t>> spans(ring.size());
    int at = n_local;
    for (size_t i = first_span; i <= last_span; ++i) {
        const auto& ni = info[i].info;
        if (ni.model_id != model_id) throw RemoteError(ring[i] + " serves another model", ring[i]);
        if (int(ni.span_start) > at || int(ni.span_end) <= at)
            throw RemoteError(ring[i] + " serves layers " + std::to_string(ni.span_start) + ":" + std::to_string(ni.span_end) +
                              ": the circuit does not continue at layer " + std::to_string(at), ring[i]);
        spans[i] = {uint32_t(at), ni.span_end};
        at = int(ni.span_end);
    }
    if (at != n_layer) throw RemoteError("the circuit's spans end at layer " + std::to_string(at) + " of " + std::to_string(n_layer));
    if (n_local > 0) m.local = std::make_unique<engine::LayerSpan>(model, 0, n_local, cfg.n_ctx);

    // The onion: one fixed-size slot per member (net/onion.h).
    m.cookie = net::random_u64();
    m.key_in = net::random_key();
    m.key_out = net::random_key();
    std::vector<uint64_t> ids(ring.size());
    for (uint64_t& id : ids) id = net::random_u64();
    const uint64_t expires = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()) + 120;
    std::vector<net::OnionLayer> layers(ring.size());
    std::vector<net::Key32> onion_keys(ring.size());
    for (size_t i = 0; i < ring.size(); ++i) {
        net::OnionLayer& layer = layers[i];
        const bool span = i >= first_span && i <= last_span;
        layer.role = span ? 1 : 0;
        layer.next_hop = i + 1 < ring.size() ? ring[i + 1] : "";
        layer.next_id = i + 1 < ring.size() ? ids[i + 1] : m.cookie;
        if (i + 1 < ring.size()) layer.next_hop_id = info[i + 1].identity;
        layer.expires_unix = expires;
        if (span) {
            layer.model_id = model_id;
            layer.span_start = spans[i].first;
            layer.span_end = spans[i].second;
            layer.max_tokens = uint32_t(cfg.n_ctx);
            layer.wire_dtype = uint8_t(cfg.wire_f32 ? net::WireDType::f32 : net::WireDType::f16);
            if (i == first_span) layer.key_in = m.key_in;
            if (i == last_span) layer.key_out = m.key_out;
        }
        onion_keys[i] = info[i].info.onion_key;
    }
    if (ring.size() > net::kOnionHops)
        throw RemoteError("a circuit has at most " + std::to_string(net::kOnionHops) + " members, this one " + std::to_string(ring.size()));
    std::vector<uint8_t> onion = net::build_onion(onion_keys, std::move(layers));
    m.entry_id = ids[0];

    // Join at the exit first (its reply says it will deliver to us), then extend from the entry.
    m.exit = m.run_sync(net::Link::connect(ring.back(), m.exit_identity, lo, info.back().identity), "circuit exit " + ring.back());
    m.start_reader(m.exit, "exit " + ring.back());
    m.entry = ring.size() == 1 ? m.exit
                               : m.run_sync(net::Link::connect(ring.front(), m.entry_identity, lo, info.front().identity), "circuit entry " + ring.front());
    if (m.entry != m.exit) m.start_reader(m.entry, "entry " + ring.front());
    m.send(m.exit, net::CircuitJoin{m.cookie});
    const uint64_t cookie = m.cookie;
    m.wait_for(m.exit.get(), [cookie](const net::Message& r) {
        const auto* o = std::get_if<net::Opened>(&r);
        return o && o->session_id == cookie;
    }, cfg.connect_timeout, "JOIN answer");
    m.send(m.entry, net::CircuitExtend{m.entry_id, std::move(onion)});
    m.wait_for(m.exit.get(), [cookie](const net::Message& r) {
        const auto* c = std::get_if<net::CircuitReady>(&r);
        return c && c->cookie == cookie;
    }, cfg.connect_timeout, "CIRCUIT_READY");
}

CircuitSession::~CircuitSession() {
    Impl& m = *impl_;
    try {
        if (m.entry && m.entry->is_open()) m.send(m.entry, net::Close{m.entry_id});
    } catch (...) {
    }
    if (m.entry) m.entry->close(net::Errc::closed);
    if (m.exit) m.exit->close(net::Errc::closed);
    m.io.restart();
    m.io.run_for(std::chrono::milliseconds(50));
}

int CircuitSession::n_vocab() const { return impl_->model->config().n_vocab; }
std::string CircuitSession::client_id() const { return impl_->entry_identity.id_hex(); }
std::string CircuitSession::exit_client_id() const { return impl_->exit_identity.id_hex(); }

void CircuitSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    Impl& m = *impl_;
    if (m.broken) throw RemoteError("the circuit failed earlier; build a new one");
    const int n = int(ids.size());
    const int64_t d = m.model->config().n_embd, nv = m.model->config().n_vocab;
    if (n == 0) throw std::invalid_argument("eval of an empty token list");
    if (n_past_ + n > cfg_.n_ctx)
        throw std::out_of_range("context full: " + std::to_string(n_past_ + n) + " tokens > n_ctx " + std::to_string(cfg_.n_ctx));
    logits.resize(all_positions ? size_t(n) * nv : size_t(nv));
    const net::WireDType wire = cfg_.wire_f32 ? net::WireDType::f32 : net::WireDType::f16;
    std::vector<float> hidden;
    for (int b = 0; b < n; b += cfg_.n_batch) {
        const int k = std::min(cfg_.n_batch, n - b);
        hidden.resize(size_t(k) * d);
        m.embed.embed(ids.data() + b, k, hidden.data());
        const uint32_t pos = uint32_t(n_past_);
        if (m.local) m.local->forward(hidden.data(), k, int(pos), m.pool);
        m.pool.park();
        const auto plain = net::encode(net::Step{0, pos, uint32_t(k), uint8_t(wire), net::pack_hidden(hidden.data(), hidden.size(), wire)});
        m.send(m.entry, net::CircuitCell{m.entry_id, net::seal_cell(m.key_in, m.seq_in++, plain)});
        const uint64_t cookie = m.cookie;
        net::Message msg = m.wait_for(m.exit.get(), [cookie](const net::Message& r) {
            const auto* c = std::get_if<net::CircuitCell>(&r);
            return c && c->circuit_id == cookie;
        }, cfg_.step_timeout, "output cell");
        m.pool.wake();  // the head comes next: workers wake while we open and unpack
        const auto opened = net::open_cell(m.key_out, m.seq_out++, std::get<net::CircuitCell>(msg).payload);
        if (!opened) {
            m.broken = true;
            throw RemoteError("circuit: the output cell does not open (altered, replayed or reordered on the way)");
        }
        net::Step out;
        try {
            net::Message om = net::decode(opened->data(), opened->size());
            if (!std::holds_alternative<net::Step>(om)) throw net::NetError(net::Errc::bad_message, "output cell is not a STEP");
            out = std::get<net::Step>(std::move(om));
            if (out.pos != pos || int(out.n_tokens) != k) throw net::NetError(net::Errc::bad_message, "output for another step");
            net::unpack_hidden(out.hidden, out.dtype, hidden.size(), hidden.data());
        } catch (const std::exception& e) {
            m.broken = true;
            throw RemoteError(std::string("circuit: ") + e.what());
        }
        n_past_ += k;
        if (all_positions) {
            m.head.logits(hidden.data(), k, logits.data() + size_t(b) * nv, m.pool);
        } else if (b + k == n) {
            m.head.logits(hidden.data() + size_t(k - 1) * d, 1, logits.data(), m.pool);
        }
    }
}

}  // namespace llmn::client
