// Dialing, accepting and the handshake (../shared/DESIGN.md, "Secure links").
//
//   each way:  HELLO {version, identity key, fresh crypto_kx key}     (plaintext)
//   each way:  AUTH  {signature, secretstream header}                 (plaintext)
//
// The signature, by the sender's identity key, covers the transcript
//   "llm-node/v1 link" | u16 version | dialer identity | listener identity |
//   dialer kx key | listener kx key | sender role ('D' or 'L') | sender's stream header.
// Signing both identities means each side states whom it believes it talks to,
// which rules out unknown-key-share (a relay that re-signs with its own key);
// the role byte keeps a signature from being reflected back to its sender.
// Session keys come from crypto_kx_{client,server}_session_keys, one per
// direction; the ephemeral secrets are wiped when the handshake ends.
#include "net/link.h"

#include "net/link_detail.h"

namespace llmn::net {

using detail::use_tuple;

namespace {

static_assert(crypto_kx_SESSIONKEYBYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES);
static_assert(crypto_kx_PUBLICKEYBYTES == 32);
static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24);

// Wipes secrets when the handshake returns, whichever way.
struct Wipe {
    void* p;
    size_t n;
    ~Wipe() { sodium_memzero(p, n); }
};

std::vector<uint8_t> transcript(const Key32& dialer_id, const Key32& listener_id, const Key32& dialer_kx,
                                const Key32& listener_kx, char sender_role,
                                const std::array<uint8_t, 24>& sender_header) {
    std::vector<uint8_t> t(detail::kTranscriptLabel, detail::kTranscriptLabel + sizeof detail::kTranscriptLabel - 1);
    t.push_back(uint8_t(kProtocolVersion));
    t.push_back(uint8_t(kProtocolVersion >> 8));
    for (const Key32* k : {&dialer_id, &listener_id, &dialer_kx, &listener_kx}) t.insert(t.end(), k->begin(), k->end());
    t.push_back(uint8_t(sender_role));
    t.insert(t.end(), sender_header.begin(), sender_header.end());
    return t;
}

std::string short_hex(const Key32& k) { return to_hex(k.data(), 8) + ".."; }

}  // namespace

asio::awaitable<std::shared_ptr<Link>> Link::connect(const std::string& host_port, const Identity& self,
                                                     LinkOptions opts, std::optional<Key32> expected_peer) {
    ensure_sodium();
    const size_t colon = host_port.rfind(':');
    std::string host = colon == std::string::npos ? "" : host_port.substr(0, colon);
    const std::string port = colon == std::string::npos ? "" : host_port.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const bool port_ok = !port.empty() && port.size() <= 5 &&
                         port.find_first_not_of("0123456789") == std::string::npos && std::stoul(port) <= 65535;
    if (host.empty() || !port_ok)
        throw NetError(Errc::bad_message, "address '" + host_port + "' is not host:port");

    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<Link> link(new Link(asio::ip::tcp::socket(ex), opts));
    link->peer_addr_ = host_port;
    // Named, not a temporary: g++ 12 may destroy a braced temporary inside a
    // co_await expression twice.
    Status on_timeout{Errc::timeout, "peer " + host_port + ": dial and handshake not done within " +
                                         detail::ms_text(opts.handshake_timeout)};
    const Status st = co_await detail::with_deadline(link->dial(host, port, self, expected_peer),
                                                     opts.handshake_timeout, std::move(on_timeout));
    if (!st.ok()) {
        link->shut();
        throw NetError(st.code, st.detail);
    }
    co_return link;
}

asio::awaitable<std::shared_ptr<Link>> Link::accept(asio::ip::tcp::socket socket, const Identity& self,
                                                    LinkOptions opts) {
    ensure_sodium();
    std::shared_ptr<Link> link(new Link(std::move(socket), opts));
    link->peer_addr_ = "(unknown address)";
    link->set_peer_address();
    Status on_timeout{Errc::timeout, link->who() + ": handshake not done within " +
                                         detail::ms_text(opts.handshake_timeout)};
    const Status st = co_await detail::with_deadline(link->handshake(self, false, std::nullopt),
                                                     opts.handshake_timeout, std::move(on_timeout));
    if (!st.ok()) {
        link->shut();
        throw NetError(st.code, st.detail);
    }
    co_return link;
}

asio::awaitable<Link::Status> Link::dial(std::string host, std::string port, const Identity& self,
                                         std::optional<Key32> expected_peer) {
    asio::ip::tcp::resolver resolver(socket_.get_executor());
    auto [ec, endpoints] = co_await resolver.async_resolve(host, port, use_tuple);
    if (ec) co_return Status{Errc::io_error, who() + ": cannot resolve: " + ec.message()};
    auto [ec2, endpoint] = co_await asio::async_connect(socket_, endpoints, use_tuple);
    if (ec2) co_return Status{Errc::io_error, who() + ": cannot connect: " + ec2.message()};
    set_peer_address();
    co_return co_await handshake(self, true, expected_peer);
}

asio::awaitable<Link::Status> Link::write_plain(const Message& m) {
    const std::vector<uint8_t> plain = encode(m);
    std::vector<uint8_t> frame(4 + plain.size());
    detail::store_le32(frame.data(), uint32_t(plain.size()));
    std::copy(plain.begin(), plain.end(), frame.begin() + 4);
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(frame), use_tuple);
    if (ec) co_return io_status(ec, "sending the handshake");
    co_return Status{};
}

asio::awaitable<Link::Status> Link::read_plain(Message& out, MsgType want) {
    const char* want_name = want == MsgType::hello ? "HELLO" : "AUTH";
    std::vector<uint8_t> body;
    Status st = co_await read_frame(body, detail::kMaxHandshakeFrame);
    if (!st.ok()) co_return st;
    // Only the expected handshake message is accepted before the handshake completes.
    if (body.empty() || body[0] != uint8_t(want))
        co_return Status{Errc::handshake_failed,
                         who() + ": expected " + want_name + " during the handshake, got message type " +
                             (body.empty() ? std::string("(none)") : std::to_string(body[0]))};
    // The version before the layout: a newer HELLO may carry more fields.
    if (want == MsgType::hello && body.size() >= 3) {
        const uint16_t version = uint16_t(body[1] | body[2] << 8);
        if (version != kProtocolVersion)
            co_return Status{Errc::handshake_failed, who() + ": peer speaks protocol version " +
                                                         std::to_string(version) + ", this node speaks " +
                                                         std::to_string(kProtocolVersion)};
    }
    try {
        out = decode(body.data(), body.size(), opts_.limits);
    } catch (const NetError& e) {
        co_return Status{e.code(), who() + ": malformed " + want_name + ": " + e.what()};
    }
    co_return Status{};
}

asio::awaitable<Link::Status> Link::handshake(const Identity& self, bool dialer, std::optional<Key32> expected_peer) {
    asio::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);  // small frames (tokens) go out at once

    Key32 my_kx{};
    std::array<uint8_t, crypto_kx_SECRETKEYBYTES> my_kx_secret{};
    std::array<uint8_t, crypto_kx_SESSIONKEYBYTES> rx_key{}, tx_key{};
    Wipe wipe_secret{my_kx_secret.data(), my_kx_secret.size()};
    Wipe wipe_rx{rx_key.data(), rx_key.size()};
    Wipe wipe_tx{tx_key.data(), tx_key.size()};
    crypto_kx_keypair(my_kx.data(), my_kx_secret.data());

    Hello mine;
    mine.identity = self.public_key();
    mine.ephemeral = my_kx;
    Status st = co_await write_plain(mine);
    if (!st.ok()) co_return st;
    Message msg;
    st = co_await read_plain(msg, MsgType::hello);
    if (!st.ok()) co_return st;
    const Hello peer = std::get<Hello>(msg);
    if (dialer && expected_peer && peer.identity != *expected_peer)
        co_return Status{Errc::handshake_failed, who() + ": peer identity " + short_hex(peer.identity) +
                                                     " is not the expected " + short_hex(*expected_peer)};
    peer_id_ = peer.identity;

    const int kx_rc = dialer ? crypto_kx_client_session_keys(rx_key.data(), tx_key.data(), my_kx.data(),
                                                             my_kx_secret.data(), peer.ephemeral.data())
                             : crypto_kx_server_session_keys(rx_key.data(), tx_key.data(), my_kx.data(),
                                                             my_kx_secret.data(), peer.ephemeral.data());
    if (kx_rc != 0)
        co_return Status{Errc::handshake_failed, who() + ": peer sent an unusable key-exchange key"};

    const Key32& dialer_id = dialer ? self.public_key() : peer.identity;
    const Key32& listener_id = dialer ? peer.identity : self.public_key();
    const Key32& dialer_kx = dialer ? my_kx : peer.ephemeral;
    const Key32& listener_kx = dialer ? peer.ephemeral : my_kx;

    Auth auth;
    crypto_secretstream_xchacha20poly1305_init_push(&tx_, auth.stream_header.data(), tx_key.data());
    const std::vector<uint8_t> my_t =
        transcript(dialer_id, listener_id, dialer_kx, listener_kx, dialer ? 'D' : 'L', auth.stream_header);
    auth.signature = self.sign(my_t.data(), my_t.size());
    st = co_await write_plain(auth);
    if (!st.ok()) co_return st;

    st = co_await read_plain(msg, MsgType::auth);
    if (!st.ok()) co_return st;
    const Auth& theirs = std::get<Auth>(msg);
    const std::vector<uint8_t> their_t =
        transcript(dialer_id, listener_id, dialer_kx, listener_kx, dialer ? 'L' : 'D', theirs.stream_header);
    if (!verify_signature(peer.identity, theirs.signature, their_t.data(), their_t.size()))
        co_return Status{Errc::handshake_failed,
                         who() + ": AUTH signature does not verify for identity " + short_hex(peer.identity)};
    if (crypto_secretstream_xchacha20poly1305_init_pull(&rx_, theirs.stream_header.data(), rx_key.data()) != 0)
        co_return Status{Errc::handshake_failed, who() + ": unusable stream header"};
    ready_ = true;
    co_return Status{};
}

}  // namespace llmn::net
