// Secure links on loopback: messages both ways, ordered concurrent writes,
// deadlines, and handshakes that must fail.
#include <gtest/gtest.h>

#include "net/net_test_support.h"

namespace llmn::net::testing {
namespace {

Step make_step(uint64_t session, size_t n_bytes) {
    Step s;
    s.session_id = session;
    s.pos = uint32_t(session * 3);
    s.n_tokens = 1;
    s.hidden.resize(n_bytes);
    for (size_t i = 0; i < n_bytes; ++i) s.hidden[i] = uint8_t(session * 13 + i);
    return s;
}

TEST(Link, ExchangesMessagesBothWays) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        EXPECT_EQ(p.client->peer_identity(), server_id.public_key());
        EXPECT_EQ(p.server->peer_identity(), client_id.public_key());
        EXPECT_EQ(p.client->peer_address(), address_of(acc));
        EXPECT_EQ(p.server->peer_address().rfind("127.0.0.1:", 0), 0u);

        Ping ping;
        ping.nonce = 77;
        co_await p.client->write(ping);
        Message got = co_await p.server->read(2s);
        EXPECT_TRUE(std::holds_alternative<Ping>(got));
        EXPECT_EQ(std::get<Ping>(got).nonce, 77u);

        const Step step = make_step(5, 300000);
        co_await p.server->write(step);
        got = co_await p.client->read(2s);
        EXPECT_TRUE(std::holds_alternative<Step>(got));
        EXPECT_EQ(std::get<Step>(got).hidden, step.hidden);
        EXPECT_TRUE(p.client->is_open() && p.server->is_open());
    });
}

TEST(Link, ConcurrentWritesArriveWholeAndInOrder) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    constexpr int kWriters = 48;
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        int finished = 0;
        for (int i = 0; i < kWriters; ++i) {
            // Sizes differ so that interleaved bytes could never decrypt.
            asio::co_spawn(io, p.client->write(make_step(uint64_t(i), 20000 + 997 * size_t(i))),
                           [&finished](std::exception_ptr e) { finished += e ? 1000 : 1; });
        }
        for (int i = 0; i < kWriters; ++i) {
            Message m = co_await p.server->read(5s);
            EXPECT_TRUE(std::holds_alternative<Step>(m));
            const Step& s = std::get<Step>(m);
            EXPECT_EQ(s.session_id, uint64_t(i));
            EXPECT_EQ(s.hidden, make_step(uint64_t(i), 20000 + 997 * size_t(i)).hidden);
        }
        co_await sleep_for(10ms);
        EXPECT_EQ(finished, kWriters);  // every write returned without an error
    });
}

TEST(Link, StreamsStayInStepAcrossRekeys) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    constexpr uint64_t kFrames = 9000;  // two rekeys: the sender rekeys every 4096 frames
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        auto send_all = [](std::shared_ptr<Link> link) -> asio::awaitable<void> {
            for (uint64_t i = 0; i < kFrames; ++i) {
                Ping ping;
                ping.nonce = i;
                co_await link->write(ping);
            }
        };
        asio::co_spawn(io, send_all(p.client), asio::detached);
        uint64_t in_order = 0;
        for (uint64_t i = 0; i < kFrames; ++i) {
            Message m = co_await p.server->read(5s);
            in_order += std::get<Ping>(m).nonce == i;
        }
        EXPECT_EQ(in_order, kFrames);
    }, 60s);
}

TEST(Link, ReadPastItsDeadlineTimesOutClosesAndTellsThePeer) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        const auto t0 = Clock::now();
        const Outcome o = co_await outcome(p.server->read(100ms));
        EXPECT_EQ(o.code, Errc::timeout) << o.what;
        EXPECT_LT(Clock::now() - t0, 2s);
        EXPECT_FALSE(p.server->is_open());
        // The peer learns why, then sees the close.
        Message m = co_await p.client->read(2s);
        EXPECT_TRUE(std::holds_alternative<Error>(m));
        EXPECT_EQ(std::get<Error>(m).code, uint16_t(Errc::timeout));
        const Outcome after = co_await outcome(p.client->read(2s));
        EXPECT_EQ(after.code, Errc::closed) << after.what;
    });
}

TEST(Link, CloseSendsItsReasonAndLaterWritesFail) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        p.server->close(Errc::overloaded, "busy");
        p.server->close(Errc::internal, "second close is a no-op");
        EXPECT_FALSE(p.server->is_open());
        Message m = co_await p.client->read(2s);
        EXPECT_TRUE(std::holds_alternative<Error>(m));
        EXPECT_EQ(std::get<Error>(m).session_id, 0u);
        EXPECT_EQ(std::get<Error>(m).code, uint16_t(Errc::overloaded));
        EXPECT_EQ(std::get<Error>(m).text, "busy");
        EXPECT_EQ((co_await outcome(p.server->write(Ping{}))).code, Errc::closed);
        EXPECT_EQ((co_await outcome(p.server->read(1s))).code, Errc::closed);
    });
}

TEST(Link, DroppedPeerEndsAReadWithClosed) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkPair p = co_await link_pair(acc, server_id, client_id);
        p.client.reset();  // destroyed without a goodbye
        const Outcome o = co_await outcome(p.server->read(2s));
        EXPECT_TRUE(o.code == Errc::closed || o.code == Errc::io_error) << o.what;
        EXPECT_NE(o.what.find("127.0.0.1:"), std::string::npos) << o.what;
    });
}

TEST(Link, OversizeOutgoingMessageIsRefusedAndTheLinkStaysUsable) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        LinkOptions opts = test_options();
        opts.max_frame = 4096;
        LinkPair p = co_await link_pair(acc, server_id, client_id, opts);
        EXPECT_EQ((co_await outcome(p.client->write(make_step(1, 8000)))).code, Errc::frame_too_large);
        EXPECT_TRUE(p.client->is_open());
        co_await p.client->write(make_step(2, 1000));
        Message m = co_await p.server->read(2s);
        EXPECT_EQ(std::get<Step>(m).session_id, 2u);
    });
}

TEST(Link, WrongExpectedPeerFailsTheHandshake) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    const Identity someone_else = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        auto server_side = [](tcp::acceptor& a, Identity id) -> asio::awaitable<Outcome> {
            tcp::socket s = co_await within(a.async_accept(asio::use_awaitable));
            co_return co_await outcome(Link::accept(std::move(s), id, test_options()));
        };
        using namespace asio::experimental::awaitable_operators;
        auto [server, client] = co_await (
            server_side(acc, server_id) &&
            outcome(Link::connect(address_of(acc), client_id, test_options(), someone_else.public_key())));
        EXPECT_EQ(client.code, Errc::handshake_failed) << client.what;
        EXPECT_NE(client.what.find(address_of(acc)), std::string::npos) << client.what;
        EXPECT_NE(client.what.find("expected"), std::string::npos) << client.what;
        EXPECT_TRUE(server.code == Errc::closed || server.code == Errc::io_error) << server.what;
    });
}

TEST(Link, SilentDialerTimesOutTheHandshake) {
    const Identity server_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        tcp::socket raw(io);
        co_await raw.async_connect(acc.local_endpoint(), asio::use_awaitable);
        tcp::socket s = co_await within(acc.async_accept(asio::use_awaitable));
        LinkOptions opts = test_options();
        opts.handshake_timeout = 200ms;
        const auto t0 = Clock::now();
        const Outcome o = co_await outcome(Link::accept(std::move(s), server_id, opts));
        EXPECT_EQ(o.code, Errc::timeout) << o.what;
        EXPECT_GE(Clock::now() - t0, 150ms);
        EXPECT_LT(Clock::now() - t0, 3s);
    });
}

TEST(Link, SilentListenerTimesOutTheDial) {
    const Identity client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());  // the kernel completes the TCP handshake; nobody answers
        LinkOptions opts = test_options();
        opts.handshake_timeout = 200ms;
        const auto t0 = Clock::now();
        const Outcome o = co_await outcome(Link::connect(address_of(acc), client_id, opts));
        EXPECT_EQ(o.code, Errc::timeout) << o.what;
        EXPECT_NE(o.what.find(address_of(acc)), std::string::npos) << o.what;
        EXPECT_LT(Clock::now() - t0, 3s);
    });
}

TEST(Link, DialingAClosedPortIsAnIoError) {
    const Identity client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        std::string addr;
        {
            tcp::acceptor acc(io, loopback0());
            addr = address_of(acc);
        }
        const Outcome o = co_await outcome(Link::connect(addr, client_id, test_options()));
        EXPECT_EQ(o.code, Errc::io_error) << o.what;
        EXPECT_NE(o.what.find(addr), std::string::npos) << o.what;
        EXPECT_EQ((co_await outcome(Link::connect("no-port-here", client_id))).code, Errc::bad_message);
    });
}

}  // namespace
}  // namespace llmn::net::testing
