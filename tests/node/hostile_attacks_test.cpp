// The catalog of hostile peers (tests/support/hostile_attacks.h), and each
// attack once against a quiet node: every one must end exactly as the protocol
// says (its link closed or an ERROR with the right code, within a bound), cost
// only its own link, and leave the node serving honest sessions.
#include <gtest/gtest.h>

#include <random>

#include "net/wire_hidden.h"
#include "support/hostile_attacks.h"
#include "support/node_process.h"

namespace llmn::testing::hostile {

using net::Errc;

Bytes random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    Bytes b(n);
    for (auto& x : b) x = uint8_t(rng());
    return b;
}

static std::string closed_in_time(RawConn& c, milliseconds bound, const char* after) {
    if (c.wait_closed(bound)) return "";
    return std::string("connection still open ") + std::to_string(bound.count()) + " ms after " + after;
}

// After a violation on a live link: an ERROR with `want` (session 0) and the
// connection closing, or just the closing (the ERROR is best effort), within kPrompt.
static std::string link_ends(HostilePeer& p, Errc want) {
    HostilePeer::Received last;
    const auto err = p.receive_until([](const net::Message& m) { return std::holds_alternative<net::Error>(m); }, kPrompt, &last);
    if (err) {
        const auto& e = std::get<net::Error>(*err);
        if (e.code != uint16_t(want) || e.session_id != 0)
            return "ERROR " + std::string(net::errc_name(Errc(e.code))) + " (session " + std::to_string(e.session_id) +
                   ") instead of " + std::string(net::errc_name(want));
        return closed_in_time(p.conn(), kPrompt, "its ERROR");
    }
    if (last.got == RawConn::Got::eof) return "";
    return "the link did not end within " + std::to_string(kPrompt.count()) + " ms; got " + last.what();
}

// A handshaken link that has read the node's NODE_INFO.
std::unique_ptr<HostilePeer> linked(const Target& t, std::string& error, net::NodeInfo* info) {
    auto p = std::make_unique<HostilePeer>(RawConn::dial(t.address));
    error = p->handshake();
    if (!error.empty()) return nullptr;
    const auto r = p->receive(kPrompt);
    const auto* ni = r.msg ? std::get_if<net::NodeInfo>(&*r.msg) : nullptr;
    if (!ni) {
        error = "no NODE_INFO after the handshake: " + r.what();
        return nullptr;
    }
    if (info) *info = *ni;
    return p;
}



net::Ping ping(uint64_t nonce) {
    net::Ping p;
    p.nonce = nonce;
    return p;
}

static net::Step one_token_step(uint64_t sid, uint32_t pos) {
    std::vector<float> h(kEmbd, 0.25f);
    return net::Step{sid, pos, 1, uint8_t(net::WireDType::f32), net::pack_hidden(h.data(), h.size(), net::WireDType::f32)};
}

std::vector<Attack> attacks() {
    std::vector<Attack> a;
    // --- before the handshake -----------------------------------------------
    a.push_back({"oversize length prefix before the handshake", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     c.send_all(prefix_only(kMaxHandshakeFrame + 1));
                     c.send_all(Bytes{1, 1, 0});
                     return closed_in_time(c, kPrompt, "a 257-byte HELLO was announced");
                 }});
    a.push_back({"2 GiB length prefix before the handshake", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     c.send_all(Bytes{0xff, 0xff, 0xff, 0x7f, 1, 2, 3});
                     return closed_in_time(c, kPrompt, "a 2 GiB frame was announced");
                 }});
    a.push_back({"garbage before the handshake", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     c.send_all(random_bytes(4096, 5));  // its first 4 bytes announce ~2 GiB
                     return closed_in_time(c, kPrompt, "4 KiB of garbage");
                 }});
    a.push_back({"garbage shaped like a HELLO frame", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     Bytes body = random_bytes(67, 6);
                     body[0] = 0x99;  // no such message type
                     c.send_all(framed(body));
                     return closed_in_time(c, kPrompt, "a HELLO-sized frame of garbage");
                 }});
    a.push_back({"HELLO of another protocol version", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     net::Hello h;
                     h.version = 2;
                     c.send_all(framed(net::encode(h)));
                     return closed_in_time(c, kPrompt, "a version-2 HELLO");
                 }});
    a.push_back({"sealed-looking frame instead of HELLO", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     c.send_all(framed(random_bytes(200, 7)));
                     return closed_in_time(c, kPrompt, "a 200-byte frame of ciphertext-like bytes");
                 }});
    a.push_back({"truncated HELLO then close", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     const Bytes hello = framed(net::encode(net::Hello{}));
                     c.send_all(hello.data(), 20);
                     c.close();
                     return std::string();
                 }});
    a.push_back({"truncated HELLO then reset", [](const Target& t) {
                     RawConn c = RawConn::dial(t.address);
                     const Bytes hello = framed(net::encode(net::Hello{}));
                     c.send_all(hello.data(), 40);
                     c.reset();
                     return std::string();
                 }});
    a.push_back({"AUTH with a bad signature", [](const Target& t) {
                     HostilePeer p(RawConn::dial(t.address));
                     if (std::string e = p.handshake(HostilePeer::Flaw::bad_signature); !e.empty()) return e;
                     const auto r = p.receive(kPrompt);  // the node must not send NODE_INFO
                     if (r.msg || r.got != RawConn::Got::eof) return "after a bad AUTH signature the node sent " + r.what();
                     return std::string();
                 }});
    a.push_back({"AUTH signed for the other role (reflection)", [](const Target& t) {
                     HostilePeer p(RawConn::dial(t.address));
                     if (std::string e = p.handshake(HostilePeer::Flaw::wrong_role); !e.empty()) return e;
                     const auto r = p.receive(kPrompt);
                     if (r.msg || r.got != RawConn::Got::eof) return "after a reflected AUTH the node sent " + r.what();
                     return std::string();
                 }});
    // --- after a real handshake ---------------------------------------------
    a.push_back({"frame above the node's max frame", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     p->conn().send_all(prefix_only(kMaxFrame + 1));
                     return link_ends(*p, Errc::frame_too_large);
                 }});
    a.push_back({"truncated sealed frame then close", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     const Bytes f = p->seal(ping(1));
                     p->conn().send_all(f.data(), f.size() / 2);
                     p->conn().close();
                     return std::string();
                 }});
    a.push_back({"garbage after the handshake", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     p->conn().send_all(framed(random_bytes(100, 8)));
                     return link_ends(*p, Errc::decrypt_failed);
                 }});
    a.push_back({"replayed frame", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     const Bytes f = p->seal(ping(41));
                     p->conn().send_all(f);
                     const auto pong = p->receive_until([](const net::Message& m) { return std::holds_alternative<net::Pong>(m); }, kPrompt);
                     if (!is<net::Pong>(pong) || std::get<net::Pong>(*pong).nonce != 41) return std::string("no PONG for the original frame");
                     p->conn().send_all(f);
                     return link_ends(*p, Errc::decrypt_failed);
                 }});
    a.push_back({"reordered frames", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     const Bytes f1 = p->seal(ping(1)), f2 = p->seal(ping(2));
                     p->conn().send_all(f2);
                     p->conn().send_all(f1);
                     HostilePeer::Received last;
                     // No PONG may come back: frame 2 first must not decrypt.
                     const auto pong = p->receive_until([](const net::Message& m) { return std::holds_alternative<net::Pong>(m); }, 300ms, &last);
                     if (pong) return std::string("the node answered a reordered frame");
                     if (last.got == RawConn::Got::eof) return std::string();
                     return link_ends(*p, Errc::decrypt_failed);
                 }});
    a.push_back({"bit-flipped ciphertext", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     Bytes f = p->seal(ping(3));
                     f[4 + 10] ^= 0x04;
                     p->conn().send_all(f);
                     return link_ends(*p, Errc::decrypt_failed);
                 }});
    a.push_back({"bit-flipped authentication tag", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     Bytes f = p->seal(ping(4));
                     f.back() ^= 0x80;
                     p->conn().send_all(f);
                     return link_ends(*p, Errc::decrypt_failed);
                 }});
    a.push_back({"sealed HELLO after the handshake", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     p->send(net::Hello{});
                     return link_ends(*p, Errc::bad_message);
                 }});
    a.push_back({"OPEN_SESSION with a wrong model id", [](const Target& t) {
                     std::string e;
                     auto p = linked(t, e);
                     if (!p) return e;
                     net::OpenSession o;
                     o.session_id = 0x5eed;
                     o.model_id.fill(0xab);
                     o.span_start = uint32_t(t.span_start);
                     o.span_end = uint32_t(t.span_end);
                     o.max_tokens = 8;
                     p->send(o);
                     const auto err = p->receive_until([](const net::Message& m) { return std::holds_alternative<net::Error>(m); }, kPrompt);
                     if (!is<net::Error>(err)) return std::string("no ERROR for a wrong model id");
                     const auto& er = std::get<net::Error>(*err);
                     if (er.session_id != 0x5eed || er.code != uint16_t(Errc::wrong_model))
                         return "ERROR " + std::string(net::errc_name(Errc(er.code))) + " instead of wrong_model";
                     // A refused session costs the session, not the link.
                     p->send(ping(7));
                     const auto pong = p->receive_until([](const net::Message& m) { return std::holds_alternative<net::Pong>(m); }, kPrompt);
                     return is<net::Pong>(pong) ? std::string() : std::string("the link died after a refused OPEN_SESSION");
                 }});
    a.push_back({"STEP and CLOSE for another link's session", [](const Target& t) {
                     std::string e;
                     net::NodeInfo info;
                     auto owner = linked(t, e, &info);
                     if (!owner) return e;
                     auto thief = linked(t, e);
                     if (!thief) return e;
                     uint64_t sid = 0;
                     randombytes_buf(&sid, sizeof sid);
                     sid |= 1;
                     net::OpenSession o;
                     o.session_id = sid;
                     o.model_id = info.model_id;
                     o.span_start = uint32_t(t.span_start);
                     o.span_end = uint32_t(t.span_end);
                     o.max_tokens = 8;
                     o.wire_dtype = uint8_t(net::WireDType::f32);
                     owner->send(o);
                     if (!is<net::Opened>(owner->receive_until([](const net::Message& m) { return std::holds_alternative<net::Opened>(m); }, kPrompt)))
                         return std::string("the owner's OPEN_SESSION was not answered with OPENED");
                     thief->send(one_token_step(sid, 0));
                     const auto err = thief->receive_until([](const net::Message& m) { return std::holds_alternative<net::Error>(m); }, kPrompt);
                     if (!is<net::Error>(err)) return std::string("no ERROR for a STEP on another link's session");
                     const auto& er = std::get<net::Error>(*err);
                     if (er.session_id != sid || er.code != uint16_t(Errc::unknown_session))
                         return "ERROR " + std::string(net::errc_name(Errc(er.code))) + " instead of unknown_session";
                     thief->send(net::Close{sid});  // ignored: not the owner
                     thief->send(ping(9));          // ordered after the CLOSE on the same link
                     if (!is<net::Pong>(thief->receive_until([](const net::Message& m) { return std::holds_alternative<net::Pong>(m); }, kPrompt)))
                         return std::string("the thief's link died");
                     // The owner's session still works, at position 0: the thief's STEP ran nothing.
                     for (uint32_t pos = 0; pos < 2; ++pos) {
                         owner->send(one_token_step(sid, pos));
                         const auto res = owner->receive_until([](const net::Message& m) { return !std::holds_alternative<net::Pong>(m); }, kPrompt);
                         if (!is<net::Result>(res) || std::get<net::Result>(*res).session_id != sid || std::get<net::Result>(*res).pos != pos)
                             return "the owner's STEP at " + std::to_string(pos) + " got " + (res ? net::to_string(*res) : std::string("nothing"));
                     }
                     return std::string();
                 }});
    return a;
}

std::string run_one(const Attack& a, const Target& t) {
    try {
        return a.run(t);
    } catch (const std::exception& e) {
        return std::string("attacker threw: ") + e.what();
    }
}

namespace {

// Every attack once, against each node, on a quiet node: exact endings.
TEST(HostileAttacks, EachEndsItsOwnLinkAndTheNodeKeepsServing) {
    const std::string model = make_model();
    NodeProcess a(model, "0:2"), b(model, "2:4");
    const std::vector<Target> targets = {{a.address(), 0, 2}, {b.address(), 2, 4}};
    for (const Attack& atk : attacks())
        for (const Target& t : targets) {
            const auto t0 = Clock::now();
            EXPECT_EQ(run_one(atk, t), "") << atk.name << " at " << t.address;
            EXPECT_LT(seconds_since(t0), 5.0) << atk.name;
        }
    EXPECT_TRUE(a.alive() && b.alive()) << a.log() << b.log();
    Honest honest(model, {a.address(), b.address()});
    std::vector<std::string> errors;
    honest.round(errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
}

}  // namespace
}  // namespace llmn::testing::hostile
