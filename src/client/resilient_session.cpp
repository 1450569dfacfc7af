#include "client/resilient_session.h"

#include <cstdio>

#include "net/link.h"

namespace llmn::client {

using Clock = std::chrono::steady_clock;

std::vector<Candidate> probe_nodes(const std::vector<std::string>& addresses, const engine::Model& model,
                                   std::chrono::milliseconds timeout) {
    net::ensure_sodium();
    const net::Key32 model_id = net::digest256(model.file().header_bytes());
    const net::Identity self = net::Identity::generate();
    std::vector<Candidate> out(addresses.size());
    std::vector<bool> ok(addresses.size(), false);
    asio::io_context io;  // last: pending probes are destroyed before what they write to
    for (size_t i = 0; i < addresses.size(); ++i) {
        // All probes run at once; each is bounded by the handshake and read timeouts.
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            const auto t0 = Clock::now();
            net::LinkOptions opts;
            opts.handshake_timeout = timeout;
            auto link = co_await net::Link::connect(addresses[i], self, opts);
            net::Message m = co_await link->read(timeout);
            const auto* ni = std::get_if<net::NodeInfo>(&m);
            if (ni && ni->model_id == model_id) {
                out[i].address = addresses[i];
                out[i].span_start = int(ni->span_start);
                out[i].span_end = int(ni->span_end);
                out[i].free_sessions = int(ni->free_sessions);
                out[i].rtt_seconds = std::chrono::duration<double>(Clock::now() - t0).count() / 3;  // handshake is ~3 trips
                ok[i] = true;
            }
            link->close(net::Errc::closed);
        }, [](std::exception_ptr) {});
    }
    io.run_for(timeout * 2);
    std::vector<Candidate> found;
    for (size_t i = 0; i < out.size(); ++i)
        if (ok[i]) found.push_back(out[i]);
    return found;
}

ResilientSession::ResilientSession(std::shared_ptr<const engine::Model> model, std::function<std::vector<std::string>()> discover,
                                   ResilientConfig cfg, tensor::ThreadPool& pool)
    : model_(std::move(model)), discover_(std::move(discover)), cfg_(cfg), pool_(pool) {
    rebuild();
}

int ResilientSession::n_vocab() const { return model_->config().n_vocab; }

void ResilientSession::rebuild() {
    remote_.reset();
    const auto candidates = probe_nodes(discover_(), *model_, cfg_.probe_timeout);
    route_ = plan_route(candidates, model_->config().n_layer, banned_);
    if (route_.empty())
        throw RemoteError("no route covers all " + std::to_string(model_->config().n_layer) + " layers (" +
                          std::to_string(candidates.size()) + " reachable nodes, " + std::to_string(banned_.size()) + " banned)");
    remote_ = std::make_unique<RemoteSession>(model_, route_, cfg_.remote, pool_);
    std::vector<float> unused;
    for (const auto& batch : history_) remote_->eval(batch, unused);  // rebuild the KV caches on the new hops
}

void ResilientSession::eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) {
    if (n_past_ + int(ids.size()) > cfg_.remote.n_ctx)
        throw std::out_of_range("context full: " + std::to_string(n_past_ + ids.size()) + " tokens > n_ctx " +
                                std::to_string(cfg_.remote.n_ctx));
    for (;;) {
        try {
            if (!remote_) rebuild();
            remote_->eval(ids, logits, all_positions);
            history_.push_back(ids);
            n_past_ += int(ids.size());
            return;
        } catch (const RemoteError& e) {
            if (++failovers_ > cfg_.max_failovers) throw RemoteError(std::string("giving up after repeated failures: ") + e.what(), e.hop());
            const auto t0 = Clock::now();
            if (!e.hop().empty()) banned_.insert(e.hop());
            std::fprintf(stderr, "[client] %s; rerouting around %s\n", e.what(), e.hop().empty() ? "it" : e.hop().c_str());
            remote_.reset();
            try {
                rebuild();
            } catch (const RemoteError& again) {
                if (failovers_ >= cfg_.max_failovers) throw;
                if (!again.hop().empty()) banned_.insert(again.hop());
                remote_.reset();
                continue;
            }
            last_recovery_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
        }
    }
}

}  // namespace llmn::client
