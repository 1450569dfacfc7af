// RemoteSession's audits (client/audit.h): the replicas' links and sessions,
// the batches sent to them, their answers and the faults they show. Runs on
// the session's io thread, inside its pumps, like everything else there.
#include <cstdio>

#include "client/audit_report.h"
#include "client/remote_session_impl.h"
#include "model/model_summary.h"
#include "net/audit.h"
#include "tensor/kernels.h"

namespace llmn::client {

namespace {

bool float_weights(const engine::Model& model) {
    const std::string q = model::summarize_model(model.file()).quantization;
    return q == "F32" || q == "F16" || q == "BF16";
}

// OPEN_SESSION.isa for a replica of hop `hop`: the hop's kernels where the
// replica can run them (then honest outputs agree to the bit), else its own.
// Other kernels than the hop's are used only where `cross_ok`: on quantized
// weights one rounding of the 8-bit activations that flips between kernel sets
// grows over the layers past any tolerance that still catches 1% noise.
uint8_t replica_kernels(const HopInfo& hop, const net::NodeInfo& replica, bool cross_ok) {
    if (hop.isa == 0 || hop.isa == replica.isa) return 0;
    if (hop.isa <= 3 && (replica.isa_set >> (hop.isa - 1)) & 1) return uint8_t(hop.isa);
    if (cross_ok) return 0;
    throw std::runtime_error("it cannot run the hop's " + std::string(tensor::isa_name(tensor::Isa(hop.isa - 1))) +
                             " kernels (quantized weights: other kernels differ by more than the tolerance)");
}

}  // namespace

void RemoteSession::Impl::open_audits(const net::Key32& mid) {
    model_id = mid;
    const size_t n = hops.size();
    replicas.assign(n, Replica{});
    std::vector<bool> audited(n, false);
    std::vector<net::Key32> ids;
    std::vector<uint64_t> sids;
    for (const Hop& h : hops) {
        ids.push_back(h.link->peer_identity());
        sids.push_back(h.session_id);
    }
    const bool floats = float_weights(*model);
    const bool was_broken = broken;  // a replica that fails is dropped, the route stays good
    for (size_t j = 0; j < n && j < cfg.auditors.size(); ++j) {
        const std::string& addr = cfg.auditors[j];
        if (addr.empty()) continue;
        Replica& r = replicas[j];
        r.address = addr;
        try {
            net::LinkOptions opts;
            opts.swarm_key = cfg.swarm_key;
            opts.punch_window = cfg.punch_window;
            r.link = run_sync(net::Link::connect(addr, identity, opts, cfg.pinned_identity(addr)), cfg.connect_timeout, "replica " + addr);
            if (r.link->peer_identity() == ids[j]) throw std::runtime_error("it is the hop it should check");
            net::Message first = run_sync(r.link->read(cfg.connect_timeout), cfg.connect_timeout, "replica " + addr);
            const auto* ni = std::get_if<net::NodeInfo>(&first);
            if (!ni || ni->model_id != mid) throw std::runtime_error("it does not serve this model");
            const HopInfo& hi = hops[j].info;
            if (int(ni->span_start) > hi.span_start || int(ni->span_end) < hi.span_end)
                throw std::runtime_error("it does not serve layers " + std::to_string(hi.span_start) + ":" + std::to_string(hi.span_end));
            const uint8_t isa = replica_kernels(hi, *ni, floats || cfg.verify_tolerance > 0);
            do r.session_id = audit_rng(); while (r.session_id == 0);
            auto link = r.link;
            asio::co_spawn(io, [this, j, link]() -> asio::awaitable<void> {
                try {
                    for (;;) {
                        net::Message m = co_await link->read();
                        on_replica_message(j, m);
                    }
                } catch (const std::exception& e) {
                    drop_replica(j, e.what());
                }
            }, asio::detached);
            net::OpenSession o;
            o.session_id = r.session_id;
            o.model_id = mid;
            o.span_start = uint32_t(hi.span_start);
            o.span_end = uint32_t(hi.span_end);
            o.max_tokens = uint32_t(cfg.n_ctx);
            o.wire_dtype = uint8_t(cfg.wire_f32 ? net::WireDType::f32 : net::WireDType::f16);
            o.audit = cfg.verify_every ? 1 : 2;  // its receipts go into reports
            o.isa = isa;
            run_sync<bool>([](std::shared_ptr<net::Link> l, net::Message msg) -> asio::awaitable<bool> {
                co_await l->write(msg);
                co_return true;
            }(link, o), cfg.connect_timeout, "replica " + addr);
            if (!pump([&] { return r.opened || r.dead; }, Clock::now() + cfg.connect_timeout) || !r.opened)
                throw std::runtime_error("no session opened there");
            audited[j] = true;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "[client] replica %s for %s not used: %s\n", addr.c_str(), name(j).c_str(), e.what());
            if (r.link) r.link->close(net::Errc::closed);
            r.dead = true;
        }
    }
    broken = was_broken;
    bool any = false;
    for (bool a : audited) any = any || a;
    if (!any) return;
    tolerance = cfg.verify_tolerance > 0 ? cfg.verify_tolerance : kDefaultVerifyTolerance;
    const double tol = tolerance;
    std::vector<size_t> kv_pos_bytes;  // sampled mode: what one position of each hop's KV cache weighs
    if (!cfg.verify_every) {
        const model::ModelConfig& c = model->config();
        for (const Hop& h : hops)
            kv_pos_bytes.push_back(size_t(h.info.span_end - h.info.span_start) * size_t(c.n_embd_k_gqa() + c.n_embd_v_gqa()) * sizeof(uint16_t));
    }
    book = std::make_unique<AuditBook>(mid, ids, sids, audited, int(model->config().n_embd), tol, audit_rng(), std::move(kv_pos_bytes));
}

void RemoteSession::Impl::on_receipt(size_t hop, net::Receipt& r) {
    if (!book || r.session_id != hops[hop].session_id) return;
    if (auto f = book->on_receipt(hop, std::move(r)); f && !fault) fault = std::move(f);
}

void RemoteSession::Impl::on_replica_message(size_t j, net::Message& m) {
    Replica& r = replicas[j];
    if (r.dead) return;
    if (auto* op = std::get_if<net::Opened>(&m)) {
        r.opened = r.opened || op->session_id == r.session_id;
    } else if (auto* e = std::get_if<net::Error>(&m)) {
        drop_replica(j, e->text);
    } else if (!book) {
        return;  // nothing else is expected before the audits start
    } else if (auto* res = std::get_if<net::Result>(&m)) {
        if (res->session_id != r.session_id || r.result) return drop_replica(j, "a result out of turn");
        r.result = std::move(*res);
    } else if (auto* rc = std::get_if<net::Receipt>(&m)) {
        // The receipt follows its result: together they are the replica's signed answer.
        if (rc->session_id != r.session_id || !r.result || r.result->pos != rc->pos || r.sent_digests.empty())
            return drop_replica(j, "a receipt out of turn");
        net::Result res = std::move(*r.result);
        r.result.reset();
        rc->hidden = res.hidden;
        if (!net::receipt_valid(*rc, model_id, r.link->peer_identity())) return drop_replica(j, "its receipt does not match its answer");
        if (rc->in_digest != r.sent_digests.front())
            return drop_replica(j, "its receipt names another input than was sent (positions " + std::to_string(rc->pos) + "+" +
                                       std::to_string(rc->n_tokens) + ", " + std::to_string(r.sent_digests.size()) + " batches in flight)");
        r.sent_digests.pop_front();
        rc->hidden.clear();
        auto f = book->on_replica_result(j, res.pos, res.n_tokens, res.dtype, res.hidden, *rc);
        if (!book->audited(j)) return drop_replica(j, "it answered another batch than was sent");
        if (f && !fault) fault = std::move(f);
    }
}

void RemoteSession::Impl::drop_replica(size_t j, const std::string& why) {
    Replica& r = replicas[j];
    if (r.dead) return;
    r.dead = true;
    std::fprintf(stderr, "[client] replica %s of %s dropped (%s): that hop goes unaudited on this route\n", r.address.c_str(),
                 name(j).c_str(), why.c_str());
    if (book) book->drop_replica(j);
    if (r.link) r.link->close(net::Errc::closed);
}

// With probability verify_rate (always when forced): in every-position mode,
// sends each replica the inputs its hop got since its last batch; in sampled
// mode, the step just answered is to be replayed (forced: nothing new), and
// the replays whose receipts are here go out. The hops cannot tell which steps
// are audited: they answered before the coin was thrown.
void RemoteSession::Impl::audit_after_step(bool force) {
    if (!book || fault) return;
    const bool coin = force || std::uniform_real_distribution<double>(0.0, 1.0)(audit_rng) < cfg.verify_rate;
    if (book->sampled()) {
        if (coin && !force) book->want_replay(uint32_t(n_past));
    } else if (!coin) {
        return;
    }
    for (size_t j = 0; j < replicas.size(); ++j) {
        Replica& r = replicas[j];
        if (r.dead || !book->audited(j)) continue;
        for (;;) {
            AuditBook::Next next = book->sampled() ? book->next_replay(j, uint32_t(n_past)) : book->next_request(j, uint32_t(n_past));
            if (next.fault) {
                fault = std::move(next.fault);
                return;
            }
            if (!next.request) break;
            AuditRequest& q = *next.request;
            if (q.n_tokens > 0) r.sent_digests.push_back(net::hidden_digest(q.hidden));  // rows only: no answer
            net::Message step = net::Step{r.session_id, q.pos, q.n_tokens, q.dtype, std::move(q.hidden), {}, q.kv_from, std::move(q.kv)};
            asio::co_spawn(io, [link = r.link, step = std::move(step)]() -> asio::awaitable<void> { co_await link->write(step); },
                           [this, j](std::exception_ptr e) {
                               if (e) drop_replica(j, "cannot send it a batch");
                           });
        }
    }
}

void RemoteSession::Impl::raise_fault() {
    if (!fault) return;
    AuditFault f = std::move(*fault);
    fault.reset();
    broken = true;
    const Hop& h = hops[f.hop];
    std::string report;
    if (f.receipt) {
        const Replica& r = replicas[f.hop];
        ReportParty replica{r.address, r.link ? r.link->peer_identity() : net::Key32{}};
        report = make_audit_report(model_id, f, ReportParty{h.info.address, h.link->peer_identity()}, replica, tolerance, identity);
    }
    throw AuditMismatch(name(f.hop) + " " + f.what, h.info.address, int(f.pos), report);
}

void RemoteSession::Impl::settle_audits() {
    raise_fault();
    if (!book) return;
    const bool done = pump([&] {
        audit_after_step(true);  // sampled: sends the wanted replays whose receipts came
        return fault.has_value() || book->idle(uint32_t(n_past));
    }, Clock::now() + cfg.step_timeout);
    if (done && !fault) fault = book->close_windows();
    raise_fault();
    if (done) return;
    if (std::optional<size_t> h = book->missing_receipt()) {
        broken = true;
        throw RemoteError(name(*h) + ": no receipt for an audited step within " + std::to_string(cfg.step_timeout.count()) + " ms",
                          hops[*h].info.address);
    }
    for (size_t j = 0; j < replicas.size(); ++j)
        if (!replicas[j].dead && book->awaiting_replica(j)) drop_replica(j, "no answer in time");
}

}  // namespace llmn::client
