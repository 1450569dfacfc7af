// Helpers for the net tests: a bounded io_context runner, bounded waits and
// loopback link pairs (the man in the middle is in frame_proxy.h).
#pragma once
#include <gtest/gtest.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "net/link.h"

namespace llmn::net::testing {

using namespace std::chrono_literals;
using asio::ip::tcp;
using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

inline LinkOptions test_options() {
    LinkOptions o;
    o.handshake_timeout = 3s;
    o.write_timeout = 3s;
    return o;
}

// Runs the coroutine that `body(io)` returns on a fresh io_context and fails
// the test when it has not finished within `limit`.
template <class F>
void run_bounded(F&& body, std::chrono::milliseconds limit = 20s) {
    asio::io_context io;
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io, body(io), [&](std::exception_ptr e) {
        done = true;
        error = e;
        io.stop();
    });
    io.run_for(limit);
    ASSERT_TRUE(done) << "the test coroutine did not finish within " << limit.count() << " ms";
    try {
        if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
        FAIL() << "the test coroutine threw: " << e.what();
    }
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
}

// Awaits `op` for at most `d`; throws std::runtime_error past the deadline.
template <class T>
asio::awaitable<T> within(asio::awaitable<T> op, std::chrono::milliseconds d = 5s) {
    using namespace asio::experimental::awaitable_operators;
    // `||` waits for a *successful* branch, so exceptions travel as values
    // (in a struct: `||` would flatten a std::variant result).
    struct Guarded {
        std::optional<T> value;
        std::exception_ptr error;
    };
    auto guarded = [](asio::awaitable<T> inner) -> asio::awaitable<Guarded> {
        Guarded g;  // g++ 12 destroys braced aggregates that hold a co_await twice
        try {
            g.value.emplace(co_await std::move(inner));
        } catch (...) {
            g.error = std::current_exception();
        }
        co_return g;
    };
    auto r = co_await (guarded(std::move(op)) || sleep_for(d));
    if (r.index() == 1) throw std::runtime_error("a test wait passed its " + std::to_string(d.count()) + " ms deadline");
    Guarded& g = std::get<0>(r);
    if (g.error) std::rethrow_exception(g.error);
    co_return std::move(*g.value);
}

// The NetError code (and what()) an awaited call ended with; ok when it returned.
struct Outcome {
    Errc code = Errc::ok;
    std::string what;
};
template <class T>
asio::awaitable<Outcome> outcome(asio::awaitable<T> op) {
    try {
        co_await std::move(op);
        co_return Outcome{};
    } catch (const NetError& e) {
        co_return Outcome{e.code(), e.what()};
    }
}

inline tcp::endpoint loopback0() { return {asio::ip::make_address("127.0.0.1"), 0}; }
inline std::string address_of(const tcp::acceptor& a) {
    return "127.0.0.1:" + std::to_string(a.local_endpoint().port());
}

struct LinkPair {
    std::shared_ptr<Link> client, server;
};

// Dials `dial_to` (the acceptor itself, or a proxy in front of it) and accepts
// on `acceptor`, both at once.
inline asio::awaitable<LinkPair> link_pair(tcp::acceptor& acceptor, const Identity& server_id,
                                           const Identity& client_id, LinkOptions opts = test_options(),
                                           std::string dial_to = "") {
    using namespace asio::experimental::awaitable_operators;
    if (dial_to.empty()) dial_to = address_of(acceptor);
    auto server_side = [](tcp::acceptor& acc, Identity id, LinkOptions o) -> asio::awaitable<std::shared_ptr<Link>> {
        tcp::socket s = co_await within(acc.async_accept(asio::use_awaitable));
        co_return co_await Link::accept(std::move(s), id, o);
    };
    auto [server, client] = co_await (server_side(acceptor, server_id, opts) &&
                                      Link::connect(dial_to, client_id, opts, server_id.public_key()));
    co_return LinkPair{client, server};
}

}  // namespace llmn::net::testing
