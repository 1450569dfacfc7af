// A peer that speaks the link protocol by hand, for hostile-peer tests against
// a real node: a dialer that runs the HELLO/AUTH handshake itself with the same
// libsodium calls as src/net/link_handshake.cpp, on a RawConn, so a test can
// then write any bytes it likes: replayed, reordered or tampered ciphertext, a
// length prefix and no body, an AUTH with a bad signature. No swarm key.
#pragma once
#include <sodium.h>

#include <array>
#include <optional>
#include <string>

#include "net/identity.h"
#include "net/messages.h"
#include "support/raw_conn.h"

namespace llmn::testing {

// The dialer's side of a link, by hand.
class HostilePeer {
public:
    enum class Flaw { none, bad_signature, wrong_role };
    // What the next sealed frame from the node turned out to be.
    struct Received {
        RawConn::Got got = RawConn::Got::error;
        bool decrypt_failed = false;
        std::optional<net::Message> msg;
        std::string what() const {
            if (msg) return net::to_string(*msg);
            if (decrypt_failed) return "undecryptable frame";
            return got == RawConn::Got::eof ? "closed" : got == RawConn::Got::timeout ? "nothing (timeout)" : "socket error";
        }
    };

    explicit HostilePeer(RawConn conn) : conn_(std::move(conn)), id_(net::Identity::generate()) {}
    ~HostilePeer() {
        sodium_memzero(&tx_, sizeof tx_);
        sodium_memzero(&rx_, sizeof rx_);
    }
    HostilePeer(const HostilePeer&) = delete;
    HostilePeer& operator=(const HostilePeer&) = delete;

    RawConn& conn() { return conn_; }
    const net::Key32& node_identity() const { return node_id_; }

    // HELLO and AUTH as the dialer (transcript as in link_handshake.cpp). With
    // a flaw, the AUTH we send is wrong and the node must refuse the link.
    // Returns "" on success, else what went wrong on our side of the wire.
    std::string handshake(Flaw flaw = Flaw::none, milliseconds timeout = milliseconds(3000)) {
        net::Key32 my_kx{};
        std::array<uint8_t, crypto_kx_SECRETKEYBYTES> my_sk{};
        crypto_kx_keypair(my_kx.data(), my_sk.data());
        net::Hello hello;
        hello.identity = id_.public_key();
        hello.ephemeral = my_kx;
        if (!conn_.send_all(framed(net::encode(hello)))) return "cannot send HELLO";
        net::Message m;
        if (std::string e = read_plain(m, timeout); !e.empty()) return "reading HELLO: " + e;
        const auto* theirs = std::get_if<net::Hello>(&m);
        if (!theirs) return "the node's first message is " + net::to_string(m);
        node_id_ = theirs->identity;
        const net::Key32 node_kx = theirs->ephemeral;
        std::array<uint8_t, crypto_kx_SESSIONKEYBYTES> rx_key{}, tx_key{};
        if (crypto_kx_client_session_keys(rx_key.data(), tx_key.data(), my_kx.data(), my_sk.data(), node_kx.data()) != 0)
            return "unusable kx key from the node";
        sodium_memzero(my_sk.data(), my_sk.size());

        net::Auth auth;
        crypto_secretstream_xchacha20poly1305_init_push(&tx_, auth.stream_header.data(), tx_key.data());
        Bytes t = transcript(id_.public_key(), node_id_, my_kx, node_kx, flaw == Flaw::wrong_role ? 'L' : 'D', auth.stream_header);
        t.insert(t.end(), auth.swarm_proof.begin(), auth.swarm_proof.end());  // zeros: no swarm key
        auth.signature = id_.sign(t.data(), t.size());
        if (flaw == Flaw::bad_signature) auth.signature[7] ^= 0x40;
        if (!conn_.send_all(framed(net::encode(auth)))) return "cannot send AUTH";
        if (std::string e = read_plain(m, timeout); !e.empty()) return "reading AUTH: " + e;
        const auto* their_auth = std::get_if<net::Auth>(&m);
        if (!their_auth) return "the node's second message is " + net::to_string(m);
        Bytes tt = transcript(id_.public_key(), node_id_, my_kx, node_kx, 'L', their_auth->stream_header);
        tt.insert(tt.end(), their_auth->swarm_proof.begin(), their_auth->swarm_proof.end());
        if (!net::verify_signature(node_id_, their_auth->signature, tt.data(), tt.size())) return "the node's AUTH does not verify";
        if (crypto_secretstream_xchacha20poly1305_init_pull(&rx_, their_auth->stream_header.data(), rx_key.data()) != 0)
            return "unusable stream header";
        sodium_memzero(rx_key.data(), rx_key.size());
        sodium_memzero(tx_key.data(), tx_key.size());
        return "";
    }

    // One sealed frame (`u32 length | ciphertext`) of `m`, next in our stream.
    Bytes seal(const net::Message& m) {
        const Bytes plain = net::encode(m);
        Bytes body(plain.size() + crypto_secretstream_xchacha20poly1305_ABYTES);
        unsigned long long clen = 0;
        crypto_secretstream_xchacha20poly1305_push(&tx_, body.data(), &clen, plain.data(), plain.size(), nullptr, 0,
                                                   crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        return framed(body);
    }
    bool send(const net::Message& m) { return conn_.send_all(seal(m)); }

    // The next frame from the node, decrypted.
    Received receive(milliseconds timeout) {
        Received r;
        uint8_t prefix[4];
        r.got = conn_.read_exact(prefix, 4, timeout);
        if (r.got != RawConn::Got::ok) return r;
        const uint32_t len = hp_load_le32(prefix);
        if (len > (64u << 20) || len < crypto_secretstream_xchacha20poly1305_ABYTES + 1) {
            r.decrypt_failed = true;
            return r;
        }
        Bytes body(len);
        r.got = conn_.read_exact(body.data(), len, timeout);
        if (r.got != RawConn::Got::ok) return r;
        Bytes plain(len - crypto_secretstream_xchacha20poly1305_ABYTES);
        unsigned long long plen = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&rx_, plain.data(), &plen, &tag, body.data(), body.size(), nullptr, 0) != 0) {
            r.decrypt_failed = true;
            return r;
        }
        try {
            r.msg = net::decode(plain.data(), size_t(plen));
        } catch (const net::NetError&) {
            r.decrypt_failed = true;
        }
        return r;
    }

    // Skips messages until one for which `pred` holds; nullopt (with the last
    // Received in `last`) when the link ends or `timeout` passes first.
    template <class Pred>
    std::optional<net::Message> receive_until(Pred pred, milliseconds timeout, Received* last = nullptr) {
        const auto deadline = HpClock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - HpClock::now());
            Received r = receive(std::max(left, milliseconds(1)));
            if (r.msg && pred(*r.msg)) return r.msg;
            if (!r.msg || HpClock::now() >= deadline) {
                if (last) *last = std::move(r);
                return std::nullopt;
            }
        }
    }

private:
    static Bytes transcript(const net::Key32& dialer_id, const net::Key32& listener_id, const net::Key32& dialer_kx,
                            const net::Key32& listener_kx, char role, const std::array<uint8_t, 24>& header) {
        static constexpr char kLabel[] = "llm-node/v1 link";
        Bytes t(kLabel, kLabel + sizeof kLabel - 1);
        t.push_back(uint8_t(net::kProtocolVersion));
        t.push_back(uint8_t(net::kProtocolVersion >> 8));
        for (const net::Key32* k : {&dialer_id, &listener_id, &dialer_kx, &listener_kx}) t.insert(t.end(), k->begin(), k->end());
        t.push_back(uint8_t(role));
        t.insert(t.end(), header.begin(), header.end());
        return t;
    }

    std::string read_plain(net::Message& out, milliseconds timeout) {
        uint8_t prefix[4];
        RawConn::Got g = conn_.read_exact(prefix, 4, timeout);
        if (g != RawConn::Got::ok) return g == RawConn::Got::eof ? "closed" : "no frame";
        const uint32_t len = hp_load_le32(prefix);
        if (len > 256) return "handshake frame of " + std::to_string(len) + " bytes";
        Bytes body(len);
        g = conn_.read_exact(body.data(), len, timeout);
        if (g != RawConn::Got::ok) return "cut off";
        try {
            out = net::decode(body.data(), body.size());
        } catch (const net::NetError& e) {
            return e.what();
        }
        return "";
    }

    RawConn conn_;
    net::Identity id_;
    net::Key32 node_id_{};
    crypto_secretstream_xchacha20poly1305_state tx_{}, rx_{};
};

}  // namespace llmn::testing
