// Private swarms: the key file's formats, and links that must prove the same
// swarm key on both sides. A keyless peer, a peer with another key, or a keyed
// peer meeting a keyless side fails the handshake on both sides with
// not_in_swarm, and no frame passes beyond HELLO and AUTH.
#include "net/swarm_key.h"

#include <gtest/gtest.h>

#include <fstream>

#include "net/frame_proxy.h"
#include "support/test_support.h"

namespace llmn::net::testing {
namespace {

SwarmKey key_of(uint8_t seed) {
    SwarmKey k;
    for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed + 17 * i);
    return k;
}

std::string write_file(const std::string& name, const std::string& content) {
    const std::string path = llmn::testing::temp_path(name);
    std::ofstream(path, std::ios::binary) << content;
    return path;
}

std::string hex_of(const SwarmKey& k, bool upper = false) {
    std::string h = to_hex(k.data(), k.size());
    if (upper)
        for (char& c : h) c = char(std::toupper(static_cast<unsigned char>(c)));
    return h;
}

std::string error_of(const std::string& path) {
    try {
        load_swarm_key(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(SwarmKey, ReadsRawBytesAndHexWithOrWithoutANewline) {
    const SwarmKey k = key_of(3);
    EXPECT_EQ(load_swarm_key(write_file("raw.key", std::string(k.begin(), k.end()))), k);
    EXPECT_EQ(load_swarm_key(write_file("hex.key", hex_of(k))), k);
    EXPECT_EQ(load_swarm_key(write_file("hex-nl.key", hex_of(k) + "\n")), k);
    EXPECT_EQ(load_swarm_key(write_file("hex-crlf.key", hex_of(k) + "\r\n")), k);
    EXPECT_EQ(load_swarm_key(write_file("hex-upper.key", hex_of(k, true) + "\n")), k);
    // A raw key that ends in a newline byte is still 32 raw bytes.
    SwarmKey nl = k;
    nl[31] = '\n';
    EXPECT_EQ(load_swarm_key(write_file("raw-nl.key", std::string(nl.begin(), nl.end()))), nl);
}

TEST(SwarmKey, BadFilesAreRefusedNamingTheFileAndTheProblem) {
    struct Case {
        const char* name;
        std::string content;
        const char* says;
    };
    const std::string hex = hex_of(key_of(5));
    const std::vector<Case> cases = {
        {"short.key", std::string(31, 'x'), "31 bytes"},
        {"raw-plus-newline.key", std::string(32, 'x') + "\n", "33 bytes"},
        {"short-hex.key", hex.substr(0, 63) + "\n", "64 bytes"},
        {"long-hex.key", hex + "00\n", "67 bytes"},
        {"two-newlines.key", hex + "\n\n", "66 bytes"},
        {"bad-digit.key", hex.substr(0, 10) + "g" + hex.substr(11), "not a hex digit at offset 10"},
        {"zeros.key", std::string(32, '\0'), "all 32 bytes are zero"},
        {"empty.key", "", "0 bytes"},
        {"huge.key", std::string(4096, 'a'), "more than 66 bytes"},
    };
    for (const Case& c : cases) {
        const std::string path = write_file(c.name, c.content);
        const std::string what = error_of(path);
        EXPECT_NE(what.find(path), std::string::npos) << c.name << ": " << what;
        EXPECT_NE(what.find(c.says), std::string::npos) << c.name << ": " << what;
    }
    const std::string missing = error_of(llmn::testing::temp_path("no-such.key"));
    EXPECT_NE(missing.find("cannot read swarm key file"), std::string::npos) << missing;
    EXPECT_NE(missing.find("head -c 32 /dev/urandom"), std::string::npos) << missing;
}

TEST(SwarmKey, SubkeysDifferByUseAndFromTheKey) {
    const SwarmKey k = key_of(9);
    const SwarmKey a = swarm_subkey(k, SwarmKeyUse::link_proof), b = swarm_subkey(k, SwarmKeyUse::link_session),
                   c = swarm_subkey(k, SwarmKeyUse::dht);
    EXPECT_NE(a, b);
    EXPECT_NE(b, c);
    EXPECT_NE(a, c);
    for (const SwarmKey& s : {a, b, c}) EXPECT_NE(s, k);
    EXPECT_EQ(swarm_subkey(k, SwarmKeyUse::dht), c);  // deterministic
    EXPECT_NE(swarm_subkey(key_of(10), SwarmKeyUse::dht), c);
    const uint8_t x[3] = {1, 2, 3};
    EXPECT_NE(swarm_digest(k, SwarmKeyUse::dht, "a", x, 3), swarm_digest(k, SwarmKeyUse::dht, "b", x, 3));
}

// ---- links ------------------------------------------------------------------

Ping ping(uint64_t nonce) {
    Ping p;
    p.nonce = nonce;
    return p;
}

// One dial through a counting proxy: the listener has `server_key`, the dialer
// `client_key`. When both handshakes succeed, a PING goes each way.
struct SwarmView {
    Outcome client, server;
    uint64_t server_got = 0, client_got = 0;  // nonces that arrived
    size_t frames_to_server = 0, frames_to_client = 0;
};

SwarmView dial(std::optional<SwarmKey> server_key, std::optional<SwarmKey> client_key, ProxyHook tamper_to_server = nullptr) {
    const Identity server_id = Identity::generate(), client_id = Identity::generate();
    SwarmView v;
    LinkOptions so = test_options(), co = test_options();
    so.swarm_key = server_key;
    co.swarm_key = client_key;
    auto count = [](size_t* n, ProxyHook inner) {
        return [n, inner](size_t index, const Bytes& body) {
            ++*n;
            return inner ? inner(index, body) : ProxyOut{framed(body)};
        };
    };
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        tcp::acceptor acc(io, loopback0());
        const std::string via = FrameProxy::start(io, acc.local_endpoint(), count(&v.frames_to_server, tamper_to_server),
                                                  count(&v.frames_to_client, nullptr));
        auto server_side = [&]() -> asio::awaitable<Outcome> {
            tcp::socket s = co_await within(acc.async_accept(asio::use_awaitable));
            try {
                auto link = co_await Link::accept(std::move(s), server_id, so);
                Message m = co_await link->read(3s);
                if (const auto* p = std::get_if<Ping>(&m)) v.server_got = p->nonce;
                co_await link->write(ping(2));
                co_return Outcome{};
            } catch (const NetError& e) {
                co_return Outcome{e.code(), e.what()};
            }
        };
        auto client_side = [&]() -> asio::awaitable<Outcome> {
            try {
                auto link = co_await Link::connect(via, client_id, co, server_id.public_key());
                co_await link->write(ping(1));
                Message m = co_await link->read(3s);
                if (const auto* p = std::get_if<Ping>(&m)) v.client_got = p->nonce;
                co_return Outcome{};
            } catch (const NetError& e) {
                co_return Outcome{e.code(), e.what()};
            }
        };
        auto [server, client] = co_await (server_side() && client_side());
        v.server = server;
        v.client = client;
        co_await sleep_for(50ms);  // let the proxy forward whatever else was sent
    });
    return v;
}

TEST(SwarmLink, PeersWithTheSameKeyConnectAndExchangeFrames) {
    const SwarmView v = dial(key_of(1), key_of(1));
    EXPECT_EQ(v.server.code, Errc::ok) << v.server.what;
    EXPECT_EQ(v.client.code, Errc::ok) << v.client.what;
    EXPECT_EQ(v.server_got, 1u);
    EXPECT_EQ(v.client_got, 2u);
}

void expect_refused_on_both_sides(const SwarmView& v, const std::string& client_says, const std::string& server_says) {
    EXPECT_EQ(v.server.code, Errc::not_in_swarm) << v.server.what;
    EXPECT_EQ(v.client.code, Errc::not_in_swarm) << v.client.what;
    EXPECT_NE(v.client.what.find(client_says), std::string::npos) << v.client.what;
    EXPECT_NE(v.server.what.find(server_says), std::string::npos) << v.server.what;
    // Nothing beyond the handshake: HELLO and AUTH each way, no sealed frame.
    EXPECT_EQ(v.frames_to_server, 2u);
    EXPECT_EQ(v.frames_to_client, 2u);
    EXPECT_EQ(v.server_got, 0u);
    EXPECT_EQ(v.client_got, 0u);
}

TEST(SwarmLink, AKeyedListenerAndAKeylessDialerRefuseEachOther) {
    expect_refused_on_both_sides(dial(key_of(1), std::nullopt), "this side has no swarm key", "the peer has no swarm key");
}

TEST(SwarmLink, AKeylessListenerAndAKeyedDialerRefuseEachOther) {
    expect_refused_on_both_sides(dial(std::nullopt, key_of(1)), "the peer has no swarm key", "this side has no swarm key");
}

TEST(SwarmLink, PeersWithDifferentKeysRefuseEachOther) {
    expect_refused_on_both_sides(dial(key_of(1), key_of(2)), "another swarm key", "another swarm key");
}

TEST(SwarmLink, KeylessPeersStillConnect) {
    const SwarmView v = dial(std::nullopt, std::nullopt);
    EXPECT_EQ(v.server.code, Errc::ok) << v.server.what;
    EXPECT_EQ(v.client_got, 2u);
}

// AUTH: type, signature[64], stream header[24], swarm proof[32]. The signature
// covers the proof, so a man in the middle cannot alter it, not even into
// "no key" (zeros), without failing the handshake as tampering.
TEST(SwarmLink, TheProofIsSignedSoAManInTheMiddleCannotAlterOrStripIt) {
    auto in_proof = [](bool zero) {
        return [zero](size_t index, const Bytes& body) {
            Bytes b = body;
            if (index == 1)
                for (size_t i = 0; i < 32; ++i) b.at(1 + 64 + 24 + i) = zero ? 0 : uint8_t(b[1 + 64 + 24 + i] ^ (i == 5 ? 1 : 0));
            return ProxyOut{framed(b)};
        };
    };
    for (bool zero : {false, true}) {
        const SwarmView v = dial(key_of(1), key_of(1), in_proof(zero));
        EXPECT_EQ(v.server.code, Errc::handshake_failed) << v.server.what;
        EXPECT_NE(v.server.what.find("signature"), std::string::npos) << v.server.what;
        EXPECT_EQ(v.server_got, 0u);
    }
}

}  // namespace
}  // namespace llmn::net::testing
