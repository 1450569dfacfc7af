// Hostile peers and a hostile network: a man in the middle that tampers with,
// replays, reorders, drops or cuts frames, and raw sockets that break the
// handshake. Each must cost exactly one link, with its own error code, and
// never a hang.
#include <gtest/gtest.h>

#include "net/frame_proxy.h"

namespace llmn::net::testing {
namespace {

Ping ping(uint64_t nonce) {
    Ping p;
    p.nonce = nonce;
    return p;
}

// Sealed frames start at index 2 (0: HELLO, 1: AUTH).
constexpr size_t kFirstSealed = 2;

// Dials through a FrameProxy whose client-to-server hook is `hook`, sends
// pings 1..n_pings, and returns what the server's reads end with: the nonces
// read before the failure and the failure.
struct ServerView {
    std::vector<uint64_t> nonces;
    Outcome failure;
    bool server_open_after = true;
    Clock::duration failed_after{};
};

ServerView through_proxy(ProxyHook to_server, int n_pings, LinkOptions opts = test_options()) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    ServerView view;
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        const std::string via = FrameProxy::start(io, acc.local_endpoint(), to_server, nullptr);
        LinkPair p = co_await link_pair(acc, server_id, client_id, opts, via);
        for (int i = 1; i <= n_pings; ++i) co_await p.client->write(ping(uint64_t(i)));
        const auto t0 = Clock::now();
        for (;;) {
            try {
                Message m = co_await p.server->read(3s);
                view.nonces.push_back(std::get<Ping>(m).nonce);
            } catch (const NetError& e) {
                view.failure = Outcome{e.code(), e.what()};
                break;
            }
        }
        view.failed_after = Clock::now() - t0;
        view.server_open_after = p.server->is_open();
        // The failed link stays failed.
        const Outcome again = co_await outcome(p.server->read(1s));
        EXPECT_EQ(again.code, Errc::closed) << again.what;
    });
    return view;
}

TEST(HostileLink, TamperedCiphertextByteFailsToDecryptAndClosesTheLink) {
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) {
            Bytes b = body;
            if (index == kFirstSealed + 1) b[b.size() / 2] ^= 0x01;
            return ProxyOut{framed(b)};
        },
        3);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_EQ(v.failure.code, Errc::decrypt_failed) << v.failure.what;
    EXPECT_NE(v.failure.what.find("127.0.0.1:"), std::string::npos) << v.failure.what;
    EXPECT_FALSE(v.server_open_after);
}

TEST(HostileLink, ReplayedFrameFailsToDecrypt) {
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) {
            Bytes out = framed(body);
            if (index == kFirstSealed) {  // the first ping, twice
                const Bytes again = framed(body);
                out.insert(out.end(), again.begin(), again.end());
            }
            return ProxyOut{out};
        },
        2);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_EQ(v.failure.code, Errc::decrypt_failed) << v.failure.what;
    EXPECT_FALSE(v.server_open_after);
}

TEST(HostileLink, ReorderedFramesFailToDecrypt) {
    auto held = std::make_shared<Bytes>();
    const ServerView v = through_proxy(
        [held](size_t index, const Bytes& body) {
            if (index == kFirstSealed) {
                *held = body;  // hold ping 1 back
                return ProxyOut{};
            }
            Bytes out = framed(body);
            if (index == kFirstSealed + 1) {  // ping 2, then ping 1
                const Bytes late = framed(*held);
                out.insert(out.end(), late.begin(), late.end());
            }
            return ProxyOut{out};
        },
        3);
    EXPECT_TRUE(v.nonces.empty());
    EXPECT_EQ(v.failure.code, Errc::decrypt_failed) << v.failure.what;
}

TEST(HostileLink, DroppedFrameFailsToDecrypt) {
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) { return index == kFirstSealed + 1 ? ProxyOut{} : ProxyOut{framed(body)}; },
        3);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_EQ(v.failure.code, Errc::decrypt_failed) << v.failure.what;
}

TEST(HostileLink, OversizeLengthPrefixIsRefusedWithoutReadingTheBody) {
    // 4 GiB announced, nothing behind it: a reader that trusted the prefix
    // would allocate it and then wait for the body until its deadline.
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) {
            if (index == kFirstSealed + 1) return ProxyOut{Bytes{0xf0, 0xff, 0xff, 0xff}};
            return ProxyOut{framed(body)};
        },
        3);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_EQ(v.failure.code, Errc::frame_too_large) << v.failure.what;
    EXPECT_NE(v.failure.what.find("4294967280"), std::string::npos) << v.failure.what;
    EXPECT_LT(v.failed_after, 1s);  // the read deadline is 3 s
    EXPECT_FALSE(v.server_open_after);
}

TEST(HostileLink, FrameAboveTheConfiguredLimitIsRefused) {
    LinkOptions opts = test_options();
    opts.max_frame = 64;  // a ping is 4 + 9 + 17 bytes; pad one frame past the limit
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) {
            Bytes b = body;
            if (index == kFirstSealed + 1) b.resize(65);
            return ProxyOut{framed(b)};
        },
        2, opts);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_EQ(v.failure.code, Errc::frame_too_large) << v.failure.what;
}

TEST(HostileLink, ConnectionDroppedMidFrameEndsTheReadAtOnce) {
    const ServerView v = through_proxy(
        [](size_t index, const Bytes& body) {
            Bytes f = framed(body);
            if (index == kFirstSealed + 1) {
                f.resize(f.size() / 2);
                return ProxyOut{f, true};
            }
            return ProxyOut{f};
        },
        3);
    EXPECT_EQ(v.nonces, (std::vector<uint64_t>{1}));
    EXPECT_TRUE(v.failure.code == Errc::closed || v.failure.code == Errc::io_error) << v.failure.what;
    EXPECT_LT(v.failed_after, 1s);
}

// The dial and the accept of one link through a proxy with these hooks.
struct HandshakeView {
    Outcome client, server;
};
HandshakeView handshake_through(ProxyHook to_server, ProxyHook to_client) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    HandshakeView view;
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        tcp::acceptor acc(io, loopback0());
        const std::string via = FrameProxy::start(io, acc.local_endpoint(), to_server, to_client);
        auto server_side = [](tcp::acceptor& a, Identity id) -> asio::awaitable<Outcome> {
            tcp::socket s = co_await within(a.async_accept(asio::use_awaitable));
            co_return co_await outcome(Link::accept(std::move(s), id, test_options()));
        };
        auto [server, client] = co_await (server_side(acc, server_id) &&
                                          outcome(Link::connect(via, client_id, test_options(), server_id.public_key())));
        view.server = server;
        view.client = client;
    });
    return view;
}

ProxyHook flip_in_frame(size_t frame, size_t byte) {
    return [frame, byte](size_t index, const Bytes& body) {
        Bytes b = body;
        if (index == frame) b.at(byte) ^= 0x80;
        return ProxyOut{framed(b)};
    };
}

TEST(HostileLink, BadSignatureFromTheDialerFailsTheListenersHandshake) {
    const HandshakeView v = handshake_through(flip_in_frame(1, 1 + 10), nullptr);  // AUTH signature byte 10
    EXPECT_EQ(v.server.code, Errc::handshake_failed) << v.server.what;
    EXPECT_NE(v.server.what.find("signature"), std::string::npos) << v.server.what;
}

TEST(HostileLink, BadSignatureFromTheListenerFailsTheDial) {
    const HandshakeView v = handshake_through(nullptr, flip_in_frame(1, 1 + 10));
    EXPECT_EQ(v.client.code, Errc::handshake_failed) << v.client.what;
}

TEST(HostileLink, SwappedStreamHeaderFailsTheHandshake) {
    const HandshakeView v = handshake_through(flip_in_frame(1, 1 + 64 + 3), nullptr);  // signed, so detected
    EXPECT_EQ(v.server.code, Errc::handshake_failed) << v.server.what;
}

TEST(HostileLink, SwappedEphemeralKeyFailsTheHandshake) {
    // HELLO: type, u16 version, identity[32], ephemeral[32].
    const HandshakeView v = handshake_through(flip_in_frame(0, 3 + 32 + 5), nullptr);
    EXPECT_EQ(v.server.code, Errc::handshake_failed) << v.server.what;
}


// ---- raw peers before the handshake ------------------------------------------

struct AcceptView {
    Outcome outcome;
    Clock::duration took{};
};
// A raw socket dials a listener and sends `bytes`; returns how Link::accept ended.
AcceptView accept_from_raw(Bytes bytes, LinkOptions opts = test_options()) {
    const Identity server_id = Identity::generate();
    AcceptView view;
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        tcp::socket raw(io);
        co_await raw.async_connect(acc.local_endpoint(), asio::use_awaitable);
        co_await asio::async_write(raw, asio::buffer(bytes), asio::use_awaitable);
        tcp::socket s = co_await within(acc.async_accept(asio::use_awaitable));
        const auto t0 = Clock::now();
        view.outcome = co_await outcome(Link::accept(std::move(s), server_id, opts));
        view.took = Clock::now() - t0;
    });
    return view;
}

Hello hello_from(const Identity& id, uint16_t version) {
    Hello h;
    h.version = version;
    h.identity = id.public_key();
    h.ephemeral[0] = 9;
    return h;
}

TEST(HostileLink, NewerProtocolVersionFailsTheHandshakeNamingTheVersion) {
    const uint16_t newer = kProtocolVersion + 1;
    const AcceptView v = accept_from_raw(plain_frame(hello_from(Identity::generate(), newer)));
    EXPECT_EQ(v.outcome.code, Errc::handshake_failed) << v.outcome.what;
    EXPECT_NE(v.outcome.what.find("version " + std::to_string(newer)), std::string::npos) << v.outcome.what;
}

TEST(HostileLink, OnlyHelloIsAcceptedBeforeTheHandshake) {
    Step step;
    step.hidden.resize(16);
    const AcceptView v = accept_from_raw(plain_frame(step));
    EXPECT_EQ(v.outcome.code, Errc::handshake_failed) << v.outcome.what;
}

TEST(HostileLink, OversizeFirstFrameIsRefusedAtOnce) {
    // Within the link's max_frame, but far above any HELLO.
    const AcceptView v = accept_from_raw(Bytes{0x00, 0x00, 0x10, 0x00});
    EXPECT_EQ(v.outcome.code, Errc::frame_too_large) << v.outcome.what;
    EXPECT_LT(v.took, 1s);  // the handshake deadline is 3 s: the body was never awaited
}

TEST(HostileLink, TruncatedHelloIsRefused) {
    Bytes f = plain_frame(hello_from(Identity::generate(), kProtocolVersion));
    f.resize(f.size() - 1);
    f[0] = uint8_t(f.size() - 4);  // a consistent frame holding a short HELLO
    const AcceptView v = accept_from_raw(f);
    EXPECT_EQ(v.outcome.code, Errc::truncated) << v.outcome.what;
}

TEST(HostileLink, DialerThatStopsAfterHelloTimesOut) {
    LinkOptions opts = test_options();
    opts.handshake_timeout = 200ms;
    const AcceptView v = accept_from_raw(plain_frame(hello_from(Identity::generate(), kProtocolVersion)), opts);
    EXPECT_EQ(v.outcome.code, Errc::timeout) << v.outcome.what;
    EXPECT_LT(v.took, 2s);
}

// A listener that answers PING with PONG on every link and counts failed links.
struct EchoServer {
    int failed = 0;
    static asio::awaitable<void> serve(std::shared_ptr<EchoServer> self, tcp::acceptor* acc, Identity id) {
        for (;;) {
            auto [ec, sock] = co_await acc->async_accept(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(acc->get_executor(), handle(self, std::move(sock), id), asio::detached);
        }
    }
    static asio::awaitable<void> handle(std::shared_ptr<EchoServer> self, tcp::socket sock, Identity id) {
        try {
            std::shared_ptr<Link> link = co_await Link::accept(std::move(sock), id, test_options());
            for (;;) {
                Message m = co_await link->read(5s);
                Pong pong;
                pong.nonce = std::get<Ping>(m).nonce;
                co_await link->write(pong);
            }
        } catch (const NetError&) {
            ++self->failed;
        }
    }
};

asio::awaitable<uint64_t> ping_pong(std::shared_ptr<Link> link, uint64_t nonce) {
    co_await link->write(ping(nonce));
    Message m = co_await link->read(2s);
    co_return std::get<Pong>(m).nonce;
}

TEST(HostileLink, ServerKeepsServingOtherLinksAfterBadOnes) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        tcp::acceptor acc(io, loopback0());
        auto server = std::make_shared<EchoServer>();
        asio::co_spawn(io, EchoServer::serve(server, &acc, server_id), asio::detached);
        const std::string addr = address_of(acc);
        std::shared_ptr<Link> a = co_await Link::connect(addr, client_id, test_options(), server_id.public_key());
        EXPECT_EQ(co_await ping_pong(a, 1), 1u);

        // Two hostile dialers: an oversize prefix, and a bad signature via a proxy.
        tcp::socket raw(io);
        co_await raw.async_connect(acc.local_endpoint(), asio::use_awaitable);
        const Bytes huge = {0xff, 0xff, 0xff, 0xff};
        co_await asio::async_write(raw, asio::buffer(huge), asio::use_awaitable);
        const std::string via = FrameProxy::start(io, acc.local_endpoint(), flip_in_frame(1, 1 + 10), nullptr);
        const Outcome bad = co_await outcome(Link::connect(via, client_id, test_options(), server_id.public_key()));
        EXPECT_EQ(bad.code, Errc::ok) << "the dialer's half of the handshake completes; the listener refuses it";
        for (int i = 0; i < 200 && server->failed < 2; ++i) co_await sleep_for(10ms);
        EXPECT_EQ(server->failed, 2);

        EXPECT_EQ(co_await ping_pong(a, 2), 2u);  // the good link is untouched
        std::shared_ptr<Link> b = co_await Link::connect(addr, client_id, test_options(), server_id.public_key());
        EXPECT_EQ(co_await ping_pong(b, 3), 3u);  // and new links are welcome
        acc.close();
    });
}

}  // namespace
}  // namespace llmn::net::testing
