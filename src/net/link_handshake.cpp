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
//
// Private swarms (LinkOptions::swarm_key): AUTH also carries a proof,
// crypto_auth (HMAC-SHA-512-256) of the sender's transcript under the key's
// link_proof subkey, and the signature covers transcript | proof, so the proof
// is bound to this handshake's fresh keys and can be neither replayed nor
// swapped. A keyless side sends zeros. Each side judges the other's proof after
// the signature: none, another key's, or one it cannot check (it has no key)
// is Errc::not_in_swarm. The secretstream keys are further keyed BLAKE2b of the
// crypto_kx keys under the link_session subkey, so even a link that skipped
// the check could not read or write a frame without the key.
#include "net/link.h"

#include "net/link_detail.h"
#include "net/relay.h"
#include "net/swarm_key.h"

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

static_assert(crypto_auth_BYTES == 32 && crypto_auth_KEYBYTES == 32);

// The proof of `key` over transcript `t`.
Key32 swarm_proof(const SwarmKey& key, const std::vector<uint8_t>& t) {
    SwarmKey sub = swarm_subkey(key, SwarmKeyUse::link_proof);
    Key32 mac{};
    crypto_auth(mac.data(), t.data(), t.size(), sub.data());
    sodium_memzero(sub.data(), sub.size());
    return mac;
}

// Replaces a crypto_kx session key by keyed BLAKE2b of it under the swarm key.
void mix_swarm_key(const SwarmKey& key, std::array<uint8_t, crypto_kx_SESSIONKEYBYTES>& session_key) {
    Key32 mixed = swarm_digest(key, SwarmKeyUse::link_session, "llm-node/v1 link key", session_key.data(), session_key.size());
    std::copy(mixed.begin(), mixed.end(), session_key.begin());
    sodium_memzero(mixed.data(), mixed.size());
}

}  // namespace

asio::awaitable<std::shared_ptr<Link>> Link::connect(const std::string& host_port, const Identity& self,
                                                     LinkOptions opts, std::optional<Key32> expected_peer) {
    ensure_sodium();
    const std::optional<RelayedAddress> via = parse_relayed(host_port);
    if (via && expected_peer && *expected_peer != via->node)
        throw NetError(Errc::handshake_failed, host_port + ": the address names another node than the one expected");
    if (via) co_return co_await connect_relayed(*via, self, opts);
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

asio::awaitable<std::shared_ptr<Link>> Link::dial_over(asio::ip::tcp::socket socket, const std::string& name, const Identity& self,
                                                       LinkOptions opts, std::optional<Key32> expected_peer) {
    ensure_sodium();
    std::shared_ptr<Link> link(new Link(std::move(socket), opts));
    link->peer_addr_ = name;
    Status on_timeout{Errc::timeout, link->who() + ": handshake not done within " + detail::ms_text(opts.handshake_timeout)};
    const Status st = co_await detail::with_deadline(link->handshake(self, true, expected_peer), opts.handshake_timeout,
                                                     std::move(on_timeout));
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
    asio::error_code ec2;
    if (!opts_.bind_ip) {
        const std::tuple<asio::error_code, asio::ip::tcp::endpoint> r = co_await asio::async_connect(socket_, endpoints, use_tuple);
        ec2 = std::get<0>(r);
    } else {
        // Bound to our listening IP: async_connect(range) would reopen the socket unbound.
        const asio::ip::address local = *opts_.bind_ip;
        ec2 = asio::error::host_not_found;
        for (const auto& entry : endpoints) {
            const asio::ip::tcp::endpoint ep = entry.endpoint();
            if (ep.address().is_v4() != local.is_v4()) continue;
            asio::error_code ignored;
            socket_.close(ignored);
            socket_.open(ep.protocol(), ignored);
            socket_.bind({local, 0}, ec2);
            if (ec2) continue;
            const std::tuple<asio::error_code> r = co_await socket_.async_connect(ep, use_tuple);
            ec2 = std::get<0>(r);
            if (!ec2) break;
        }
    }
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
    const auto t_start = std::chrono::steady_clock::now();

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
    if (opts_.swarm_key) {
        mix_swarm_key(*opts_.swarm_key, rx_key);
        mix_swarm_key(*opts_.swarm_key, tx_key);
    }

    const Key32& dialer_id = dialer ? self.public_key() : peer.identity;
    const Key32& listener_id = dialer ? peer.identity : self.public_key();
    const Key32& dialer_kx = dialer ? my_kx : peer.ephemeral;
    const Key32& listener_kx = dialer ? peer.ephemeral : my_kx;

    Auth auth;
    crypto_secretstream_xchacha20poly1305_init_push(&tx_, auth.stream_header.data(), tx_key.data());
    std::vector<uint8_t> my_t =
        transcript(dialer_id, listener_id, dialer_kx, listener_kx, dialer ? 'D' : 'L', auth.stream_header);
    if (opts_.swarm_key) auth.swarm_proof = swarm_proof(*opts_.swarm_key, my_t);
    my_t.insert(my_t.end(), auth.swarm_proof.begin(), auth.swarm_proof.end());
    auth.signature = self.sign(my_t.data(), my_t.size());
    st = co_await write_plain(auth);
    if (!st.ok()) co_return st;

    st = co_await read_plain(msg, MsgType::auth);
    if (!st.ok()) co_return st;
    const Auth& theirs = std::get<Auth>(msg);
    std::vector<uint8_t> their_t =
        transcript(dialer_id, listener_id, dialer_kx, listener_kx, dialer ? 'L' : 'D', theirs.stream_header);
    their_t.insert(their_t.end(), theirs.swarm_proof.begin(), theirs.swarm_proof.end());
    if (!verify_signature(peer.identity, theirs.signature, their_t.data(), their_t.size()))
        co_return Status{Errc::handshake_failed,
                         who() + ": AUTH signature does not verify for identity " + short_hex(peer.identity)};
    st = check_swarm_proof(theirs.swarm_proof, their_t);
    if (!st.ok()) co_return st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&rx_, theirs.stream_header.data(), rx_key.data()) != 0)
        co_return Status{Errc::handshake_failed, who() + ": unusable stream header"};
    ready_ = true;
    handshake_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    co_return Status{};
}

Link::Status Link::check_swarm_proof(const Key32& proof, std::vector<uint8_t> signed_transcript) const {
    const bool peer_has_key = !sodium_is_zero(proof.data(), proof.size());
    if (!opts_.swarm_key && !peer_has_key) return Status{};
    if (!opts_.swarm_key)
        return Status{Errc::not_in_swarm, who() + ": the peer is in a private swarm and this side has no swarm key "
                                                  "(give the swarm's key with --swarm-key FILE)"};
    if (!peer_has_key)
        return Status{Errc::not_in_swarm, who() + ": the peer has no swarm key, and this side is in a private swarm "
                                                  "(--swarm-key): refused"};
    // The MAC covers the transcript without the proof appended to it.
    signed_transcript.resize(signed_transcript.size() - proof.size());
    SwarmKey sub = swarm_subkey(*opts_.swarm_key, SwarmKeyUse::link_proof);
    const bool ok = crypto_auth_verify(proof.data(), signed_transcript.data(), signed_transcript.size(), sub.data()) == 0;
    sodium_memzero(sub.data(), sub.size());
    if (!ok)
        return Status{Errc::not_in_swarm, who() + ": the peer's swarm-key proof does not verify: it holds another "
                                                  "swarm key (a different private swarm)"};
    return Status{};
}

}  // namespace llmn::net
