// A frame-aware man in the middle on loopback: it forwards whole frames and
// lets a test tamper with, drop, replay, reorder or cut them in flight.
#pragma once
#include <functional>

#include "net/net_test_support.h"

namespace llmn::net::testing {

inline Bytes framed(const Bytes& body) {
    Bytes f(4 + body.size());
    for (int i = 0; i < 4; ++i) f[i] = uint8_t(body.size() >> (8 * i));
    std::copy(body.begin(), body.end(), f.begin() + 4);
    return f;
}

// A plaintext frame as a raw peer would send it before the handshake.
inline Bytes plain_frame(const Message& m) { return framed(encode(m)); }

// What the proxy sends on in place of one frame; `cut` then drops both sides.
struct ProxyOut {
    Bytes bytes;
    bool cut = false;
};
// Frame `index` (0: HELLO, 1: AUTH, 2..: sealed messages) of one direction.
using ProxyHook = std::function<ProxyOut(size_t index, const Bytes& body)>;

// Accepts one connection on 127.0.0.1, dials `target` and forwards whole
// frames both ways through the hooks (a missing hook forwards unchanged).
class FrameProxy {
public:
    static std::string start(asio::io_context& io, tcp::endpoint target, ProxyHook to_server, ProxyHook to_client) {
        auto st = std::make_shared<State>(io);
        st->to_server = std::move(to_server);
        st->to_client = std::move(to_client);
        const std::string addr = address_of(st->acceptor);
        asio::co_spawn(io, run(st, target), asio::detached);
        return addr;
    }

private:
    struct State {
        explicit State(asio::io_context& io) : acceptor(io, loopback0()), client(io), server(io) {}
        tcp::acceptor acceptor;
        tcp::socket client, server;
        ProxyHook to_server, to_client;
        void cut() {
            asio::error_code ec;
            client.close(ec);
            server.close(ec);
        }
    };

    static asio::awaitable<void> run(std::shared_ptr<State> st, tcp::endpoint target) {
        using namespace asio::experimental::awaitable_operators;
        try {
            st->client = co_await within(st->acceptor.async_accept(asio::use_awaitable));
            co_await st->server.async_connect(target, asio::use_awaitable);  // loopback: at once
        } catch (...) {
            st->cut();
            co_return;
        }
        co_await (pump(st, &st->client, &st->server, st->to_server) &&
                  pump(st, &st->server, &st->client, st->to_client));
    }

    static asio::awaitable<void> pump(std::shared_ptr<State> st, tcp::socket* from, tcp::socket* to, ProxyHook hook) {
        const auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
        for (size_t index = 0;; ++index) {
            uint8_t prefix[4];
            auto [ec, n] = co_await asio::async_read(*from, asio::buffer(prefix), tuple);
            if (ec) break;
            const uint32_t len = uint32_t(prefix[0]) | uint32_t(prefix[1]) << 8 | uint32_t(prefix[2]) << 16 |
                                 uint32_t(prefix[3]) << 24;
            if (len > (256u << 20)) break;
            Bytes body(len);
            auto [ec2, n2] = co_await asio::async_read(*from, asio::buffer(body), tuple);
            if (ec2) break;
            ProxyOut out = hook ? hook(index, body) : ProxyOut{framed(body)};
            auto [ec3, n3] = co_await asio::async_write(*to, asio::buffer(out.bytes), tuple);
            if (ec3 || out.cut) break;
        }
        st->cut();
    }
};

}  // namespace llmn::net::testing
