// Secure link, listener side (Link::accept + Link::read), against a hostile peer
// on the other end of a socketpair. The first input byte picks where the
// attacker's bytes start:
//   0: raw bytes from the first byte on (the HELLO stage);
//   1: a real HELLO, then raw bytes (the AUTH stage);
//   2: a real dialer handshake, then records [u8 kind][u32 len][len bytes]:
//      kind 0 goes raw onto the socket, 1..3 is sealed into a frame with the
//      dialer's stream (tag message, rekey, final), so the listener decrypts and
//      decodes attacker plaintext.
// Then the peer half-closes and the listener reads until the link fails. Every
// wait has a deadline; a run still busy after 10 s traps (a hang).
#include <sys/socket.h>

#include <csignal>

#include "net/link.h"
#include "net/link_detail.h"

using namespace llmn::net;
using detail::use_tuple;
using Local = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;

namespace {

const Identity& listener_identity() {
    static const Identity id = Identity::generate();
    return id;
}
const Identity& dialer_identity() {
    static const Identity id = Identity::generate();
    return id;
}

asio::awaitable<void> listen(asio::ip::tcp::socket s) {
    LinkOptions opts;
    opts.handshake_timeout = 2000ms;
    opts.write_timeout = 2000ms;
    try {
        auto link = co_await Link::accept(std::move(s), listener_identity(), opts);
        for (;;) (void)co_await link->read(2000ms);
    } catch (const NetError&) {
    }
}

std::vector<uint8_t> framed(const uint8_t* p, size_t n) {
    std::vector<uint8_t> f(4 + n);
    detail::store_le32(f.data(), uint32_t(n));
    std::copy(p, p + n, f.begin() + 4);
    return f;
}

asio::awaitable<bool> send(Local& s, const std::vector<uint8_t>& bytes) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes), use_tuple);
    co_return !ec;
}

// The listener's HELLO (plaintext frame).
asio::awaitable<std::optional<Hello>> recv_hello(Local& s) {
    std::array<uint8_t, 4> prefix{};
    auto [ec, n] = co_await asio::async_read(s, asio::buffer(prefix), use_tuple);
    const uint32_t len = detail::load_le32(prefix.data());
    if (ec || len > detail::kMaxHandshakeFrame) co_return std::nullopt;
    std::vector<uint8_t> body(len);
    auto [ec2, n2] = co_await asio::async_read(s, asio::buffer(body), use_tuple);
    if (ec2) co_return std::nullopt;
    const Message m = decode(body.data(), body.size());
    if (!std::holds_alternative<Hello>(m)) __builtin_trap();
    co_return std::get<Hello>(m);
}

// Sends the attacker's bytes (see the top of the file), half-closes, and reads
// until the listener closes so that no unread data resets the connection early.
asio::awaitable<void> attack(Local s, const uint8_t* data, size_t size) {
    const int mode = data[0] % 3;
    ++data, --size;
    std::vector<uint8_t> out;
    if (mode > 0) {
        auto theirs = co_await recv_hello(s);
        if (!theirs) co_return;
        Hello mine;
        mine.identity = dialer_identity().public_key();
        std::array<uint8_t, crypto_kx_SECRETKEYBYTES> kx_secret{};
        crypto_kx_keypair(mine.ephemeral.data(), kx_secret.data());
        const std::vector<uint8_t> hello = encode(mine);
        if (!co_await send(s, framed(hello.data(), hello.size()))) co_return;
        if (mode == 2) {
            std::array<uint8_t, crypto_kx_SESSIONKEYBYTES> rx{}, tx{};
            if (crypto_kx_client_session_keys(rx.data(), tx.data(), mine.ephemeral.data(), kx_secret.data(),
                                              theirs->ephemeral.data()) != 0)
                __builtin_trap();
            crypto_secretstream_xchacha20poly1305_state stream;
            Auth auth;  // public link: swarm_proof stays zeros
            crypto_secretstream_xchacha20poly1305_init_push(&stream, auth.stream_header.data(), tx.data());
            std::vector<uint8_t> t(detail::kTranscriptLabel, detail::kTranscriptLabel + sizeof detail::kTranscriptLabel - 1);
            t.push_back(uint8_t(kProtocolVersion)), t.push_back(uint8_t(kProtocolVersion >> 8));
            for (const Key32* k : {&mine.identity, &theirs->identity, &mine.ephemeral, &theirs->ephemeral})
                t.insert(t.end(), k->begin(), k->end());
            t.push_back('D');
            t.insert(t.end(), auth.stream_header.begin(), auth.stream_header.end());
            t.insert(t.end(), auth.swarm_proof.begin(), auth.swarm_proof.end());
            auth.signature = dialer_identity().sign(t.data(), t.size());
            const std::vector<uint8_t> a = encode(auth);
            if (!co_await send(s, framed(a.data(), a.size()))) co_return;
            for (size_t i = 0; i < size;) {
                const int kind = data[i++] % 4;
                uint32_t len = 0;
                for (int k = 0; k < 4 && i < size; ++k) len |= uint32_t(data[i++]) << (8 * k);
                len = uint32_t(std::min<size_t>(len, size - i));
                if (kind == 0) {
                    out.insert(out.end(), data + i, data + i + len);
                } else {
                    static constexpr uint8_t kTags[] = {0, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
                                                        crypto_secretstream_xchacha20poly1305_TAG_REKEY,
                                                        crypto_secretstream_xchacha20poly1305_TAG_FINAL};
                    std::vector<uint8_t> c(len + crypto_secretstream_xchacha20poly1305_ABYTES);
                    crypto_secretstream_xchacha20poly1305_push(&stream, c.data(), nullptr, data + i, len, nullptr, 0,
                                                               kTags[kind]);
                    const std::vector<uint8_t> f = framed(c.data(), c.size());
                    out.insert(out.end(), f.begin(), f.end());
                }
                i += len;
            }
        }
    }
    if (mode < 2) out.assign(data, data + size);
    if (!co_await send(s, out)) co_return;
    asio::error_code ec;
    s.shutdown(Local::shutdown_send, ec);
    std::array<uint8_t, 4096> sink;
    while (!ec) std::tie(ec, std::ignore) = co_await s.async_read_some(asio::buffer(sink), use_tuple);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool init = [] {
        std::signal(SIGPIPE, SIG_IGN);
        ensure_sodium();
        return true;
    }();
    (void)init;
    if (size == 0) return 0;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) __builtin_trap();
    asio::io_context io;
    asio::ip::tcp::socket listener(io);
    listener.assign(asio::ip::tcp::v4(), fds[0]);  // Link wants a TCP socket; its TCP-only options fail quietly
    Local peer(io);
    peer.assign(asio::local::stream_protocol(), fds[1]);
    asio::co_spawn(io, listen(std::move(listener)), asio::detached);
    asio::co_spawn(io, attack(std::move(peer), data, size), asio::detached);
    io.run_for(10s);
    if (!io.stopped()) __builtin_trap();  // something waits without a deadline
    return 0;
}
