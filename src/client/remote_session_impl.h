// RemoteSession's state, shared by remote_session.cpp (the route) and
// remote_audit.cpp (its audits). Internal to client/.
#pragma once
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <random>

#include "client/audit.h"
#include "client/remote_session.h"
#include "engine/layer_span.h"
#include "engine/stages.h"
#include "net/link.h"
#include "tensor/thread_pool.h"

namespace llmn::client {

using Clock = std::chrono::steady_clock;

struct RemoteSession::Impl {
    asio::io_context io{1};
    net::Identity identity = net::Identity::generate();
    std::shared_ptr<const engine::Model> model;
    engine::EmbeddingStage embed;
    engine::HeadStage head;
    std::unique_ptr<engine::LayerSpan> local;  // layers [0, local_layers) with their KV cache, or null
    tensor::ThreadPool& pool;
    RemoteConfig cfg;
    struct Hop {
        HopInfo info;
        std::shared_ptr<net::Link> link;
        uint64_t session_id = 0;
        bool dead = false;
        std::string why;
    };
    std::vector<Hop> hops;
    std::deque<std::pair<size_t, net::Message>> inbox;
    std::vector<HopInfo> hop_infos;
    bool broken = false;
    int n_past = 0;  // mirrors RemoteSession::n_past_ for the audits

    // --- audits (remote_audit.cpp)
    struct Replica {
        std::string address;
        std::shared_ptr<net::Link> link;
        uint64_t session_id = 0;
        bool opened = false, dead = false;
        std::optional<net::Result> result;  // waiting for the receipt that follows it
        std::deque<net::Key32> sent_digests;  // of the batches in flight, in order
    };
    net::Key32 model_id{};
    double tolerance = 0;  // per position (client/audit.h)
    std::vector<Replica> replicas;  // by hop; none where no auditor was given or it failed
    std::unique_ptr<AuditBook> book;
    std::optional<AuditFault> fault;  // found by an audit, raised at the next safe point
    std::mt19937_64 audit_rng{std::random_device{}()};
    void open_audits(const net::Key32& model_id);
    void on_receipt(size_t hop, net::Receipt& r);
    void on_replica_message(size_t j, net::Message& m);
    void drop_replica(size_t j, const std::string& why);
    void audit_after_step(bool force);
    void raise_fault();  // throws AuditMismatch when an audit found a hop wrong
    void settle_audits();

    Impl(std::shared_ptr<const engine::Model> m, RemoteConfig c, tensor::ThreadPool& p)
        : model(m), embed(m), head(m), pool(p), cfg(c) {}

    std::string name(size_t i) const {
        const Hop& h = hops[i];
        std::string s = "hop " + std::to_string(i + 1) + " (" + h.info.address;
        if (h.info.span_end > 0) s += ", layers " + std::to_string(h.info.span_start) + ":" + std::to_string(h.info.span_end);
        return s + ")";
    }

    // Runs the io_context on this thread until `done()` or the deadline.
    template <class Pred>
    bool pump(Pred done, Clock::time_point deadline) {
        while (!done()) {
            if (io.stopped()) io.restart();
            if (io.run_one_until(deadline) == 0 && Clock::now() >= deadline) return false;
        }
        return true;
    }

    template <class T>
    T run_sync(asio::awaitable<T> a, std::chrono::milliseconds timeout, const std::string& what, const std::string& hop = "") {
        std::optional<T> result;
        std::exception_ptr err;
        bool done = false;
        asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
            err = e;
            if (!e) result = std::move(v);
            done = true;
        });
        if (!pump([&] { return done; }, Clock::now() + timeout)) {
            broken = true;
            throw RemoteError(what + ": no answer within " + std::to_string(timeout.count()) + " ms", hop);
        }
        if (err) {
            try {
                std::rethrow_exception(err);
            } catch (const std::exception& e) {
                throw RemoteError(what + ": " + e.what(), hop);
            }
        }
        return std::move(*result);
    }

    void start_reader(size_t i) {
        auto link = hops[i].link;
        asio::co_spawn(io, [this, i, link]() -> asio::awaitable<void> {
            try {
                for (;;) {
                    net::Message m = co_await link->read();
                    if (auto* r = std::get_if<net::Receipt>(&m)) on_receipt(i, *r);  // audits: not awaited by anyone
                    else inbox.emplace_back(i, std::move(m));
                }
            } catch (const std::exception& e) {
                hops[i].dead = true;
                hops[i].why = e.what();
            }
        }, asio::detached);
    }

    void send(size_t i, net::Message m) {
        auto link = hops[i].link;
        run_sync<bool>([](std::shared_ptr<net::Link> l, net::Message msg) -> asio::awaitable<bool> {
            co_await l->write(msg);
            co_return true;
        }(link, std::move(m)), cfg.connect_timeout, name(i), hops[i].info.address);
    }

    // Waits for a message matching `want` from hop `from`; an ERROR for one of
    // our sessions or a dead hop ends the wait with RemoteError naming the hop.
    template <class Want>
    net::Message wait_for(size_t from, Want want, std::chrono::milliseconds timeout, const std::string& what) {
        std::optional<net::Message> got;
        auto check = [&] {
            for (size_t h = 0; h < hops.size(); ++h)
                if (hops[h].dead) {
                    broken = true;
                    throw RemoteError(name(h) + " failed: " + hops[h].why, hops[h].info.address);
                }
            while (!inbox.empty()) {
                auto [h, m] = std::move(inbox.front());
                inbox.pop_front();
                if (auto* e = std::get_if<net::Error>(&m)) {
                    broken = true;
                    throw RemoteError(name(h) + " reported " + std::string(net::errc_name(net::Errc(e->code))) + ": " + e->text,
                                      hops[h].info.address);
                }
                if (h == from && want(m)) {
                    got = std::move(m);
                    return true;
                }
            }
            return false;
        };
        if (!pump(check, Clock::now() + timeout)) {
            broken = true;
            throw RemoteError(name(from) + ": no " + what + " within " + std::to_string(timeout.count()) + " ms (a hop stalled)",
                              hops[from].info.address);
        }
        return std::move(*got);
    }
};


}  // namespace llmn::client
