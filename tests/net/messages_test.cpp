// Wire messages: every kind round-trips, the layout is little-endian and
// frozen, and every malformed input is refused with its own error code.
#include <gtest/gtest.h>

#include <set>

#include "net/messages.h"

namespace llmn::net {
namespace {

Key32 key(uint8_t seed) {
    Key32 k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed + i);
    return k;
}

std::vector<uint8_t> bytes(size_t n, uint8_t seed) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed * 31 + i * 7);
    return b;
}

// One sample of every kind, with non-zero values in every field.
std::vector<Message> samples() {
    Hello hello;
    hello.version = 0x0102;
    hello.identity = key(1);
    hello.ephemeral = key(2);
    Auth auth;
    for (size_t i = 0; i < auth.signature.size(); ++i) auth.signature[i] = uint8_t(200 - i);
    for (size_t i = 0; i < auth.stream_header.size(); ++i) auth.stream_header[i] = uint8_t(i * 3);
    auth.swarm_proof = key(3);
    OpenSession open;
    open.session_id = 0x1122334455667788ull;
    open.model_id = key(9);
    open.span_start = 4;
    open.span_end = 12;
    open.max_tokens = 4096;
    open.next_hop = "10.0.0.7:7001";
    open.next_session_id = 99;
    open.wire_dtype = uint8_t(WireDType::f32);
    open.audit = 1;
    Step step;
    step.session_id = 5;
    step.pos = 17;
    step.n_tokens = 3;
    step.dtype = uint8_t(WireDType::f16);
    step.hidden = bytes(3 * 64 * 2, 4);
    for (size_t i = 0; i < step.commit.size(); ++i) step.commit[i] = uint8_t(i + 1);
    Result result;
    result.session_id = 6;
    result.pos = 20;
    result.n_tokens = 1;
    result.dtype = uint8_t(WireDType::f32);
    result.hidden = bytes(64 * 4, 5);
    Close close;
    close.session_id = 7;
    Error error;
    error.session_id = 8;
    error.code = uint16_t(Errc::overloaded);
    error.text = "too many sessions";
    Ping ping;
    ping.nonce = 0xdeadbeefcafef00dull;
    Pong pong;
    pong.nonce = 42;
    Opened opened;
    opened.session_id = 9;
    opened.n_ctx = 2048;
    NodeInfo info;
    info.model_id = key(11);
    info.n_layer = 24;
    info.span_start = 0;
    info.span_end = 12;
    info.free_sessions = 3;
    info.version = "0.1.0";
    info.onion_key = key(12);
    CircuitExtend extend{31, bytes(200, 6)};
    CircuitCell cell{32, bytes(96, 7)};
    CircuitJoin join{33};
    CircuitReady ready{34};
    OnionLayer layer;
    layer.role = 1;
    layer.next_hop = "10.0.0.8:7001";
    layer.next_id = 35;
    layer.model_id = key(13);
    layer.span_start = 2;
    layer.span_end = 4;
    layer.max_tokens = 512;
    layer.key_in = key(14);
    layer.next_hop_id = key(17);
    layer.peel_key = key(18);
    layer.expires_unix = 1700000000;
    info.reach = uint8_t(Reach::mapped);
    info.relay_free = 7;
    info.relayed = bytes(64, 9);
    info.relay_links = 16;
    info.relay_bytes_per_s = 1u << 24;
    DialBack dial_back{7001, key(15)};
    DialBackResult dial_result{0, "100.64.11.2:40000", "timeout"};
    RelayRegistered registered{1, "100.64.11.2:40001", "", 16, 1u << 24};
    RelayDial relay_dial{key(16), 1500};
    RelayReady relay_ready{"100.64.12.2:40002", 12, 1500};
    Receipt receipt;
    receipt.session_id = 36;
    receipt.pos = 40;
    receipt.n_tokens = 2;
    receipt.in_digest = key(20);
    receipt.out_digest = key(21);
    for (size_t i = 0; i < receipt.signature.size(); ++i) receipt.signature[i] = uint8_t(i * 5);
    for (size_t i = 0; i < receipt.prev_commit.size(); ++i) receipt.prev_commit[i] = uint8_t(i * 7);
    receipt.hidden = bytes(2 * 64 * 2, 8);
    receipt.kv_digest = key(22);
    receipt.kv = bytes(2 * 32, 6);
    return {hello, auth, open, step, result, close, error, ping, pong, opened, info, extend, cell, join, ready, layer,
            dial_back, dial_result, RelayRegister{}, registered, relay_dial, RelayIncoming{77}, RelayAccept{77}, relay_ready,
            ProbeRequest{5, "1.2.3.4:5,6.7.8.9:10"}, ProbeAnswer{5, "1.2.3.4:5", key(19), 1234, bytes(40, 3)}, receipt};
}

Errc decode_error(const std::vector<uint8_t>& b, const DecodeLimits& limits = {}) {
    try {
        decode(b.data(), b.size(), limits);
    } catch (const NetError& e) {
        return e.code();
    }
    return Errc::ok;
}

TEST(Messages, SamplesCoverEveryKind) {
    const auto all = samples();
    ASSERT_EQ(all.size(), std::variant_size_v<Message>);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].index(), i);
}

TEST(Messages, AReplayStepCarriesItsKvRows) {
    const Step replay{41, 9, 1, 1, bytes(64 * 2, 2), {}, 3, bytes(6 * 16, 4)};  // a replica's replay: KV rows first
    const std::vector<uint8_t> wire = encode(replay);
    const Step back = std::get<Step>(decode(wire.data(), wire.size()));
    EXPECT_EQ(back.kv_from, 3u);
    EXPECT_EQ(back.kv, replay.kv);
    EXPECT_EQ(encode(back), wire);
    DecodeLimits small;
    small.max_bytes = 64;  // KV rows obey the payload limit like hidden states
    EXPECT_NE(decode_error(wire, small), Errc::ok);
}

TEST(Messages, EveryKindRoundTripsToTheSameBytes) {
    for (const Message& m : samples()) {
        const std::vector<uint8_t> wire = encode(m);
        ASSERT_FALSE(wire.empty());
        EXPECT_EQ(wire[0], uint8_t(type_of(m)));
        const Message back = decode(wire.data(), wire.size());
        EXPECT_EQ(back.index(), m.index()) << to_string(m);
        EXPECT_EQ(encode(back), wire) << to_string(m);
        EXPECT_EQ(to_string(back), to_string(m));
    }
}

TEST(Messages, StepFieldsSurviveARoundTrip) {
    const Step in = std::get<Step>(samples()[3]);
    const auto wire = encode(in);
    const Step out = std::get<Step>(decode(wire.data(), wire.size()));
    EXPECT_EQ(out.session_id, in.session_id);
    EXPECT_EQ(out.pos, in.pos);
    EXPECT_EQ(out.n_tokens, in.n_tokens);
    EXPECT_EQ(out.dtype, in.dtype);
    EXPECT_EQ(out.hidden, in.hidden);
}

TEST(Messages, IntegersAreLittleEndianOnTheWire) {
    Ping ping;
    ping.nonce = 0x0102030405060708ull;
    EXPECT_EQ(encode(ping), (std::vector<uint8_t>{8, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}));
    Error err;
    err.session_id = 1;
    err.code = 0x0203;
    err.text = "ab";
    EXPECT_EQ(encode(err), (std::vector<uint8_t>{7, 1, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x02, 2, 0, 0, 0, 'a', 'b'}));
}

TEST(Messages, TypeIdsAreFrozen) {
    EXPECT_EQ(uint8_t(MsgType::hello), 1);
    EXPECT_EQ(uint8_t(MsgType::step), 4);
    EXPECT_EQ(uint8_t(MsgType::pong), 9);
    EXPECT_EQ(uint8_t(MsgType::node_info), 11);
}

TEST(Messages, EveryTruncationIsReportedAsTruncated) {
    for (const Message& m : samples()) {
        const auto wire = encode(m);
        for (size_t len = 0; len < wire.size(); ++len) {
            const std::vector<uint8_t> cut(wire.begin(), wire.begin() + len);
            EXPECT_EQ(decode_error(cut), Errc::truncated) << to_string(m) << " cut to " << len << " bytes";
        }
    }
}

TEST(Messages, TrailingBytesAreABadMessage) {
    for (const Message& m : samples()) {
        auto wire = encode(m);
        wire.push_back(0);
        EXPECT_EQ(decode_error(wire), Errc::bad_message) << to_string(m);
    }
}

TEST(Messages, UnknownTypesAreABadMessage) {
    for (uint8_t t : {0, 28, 200, 255}) EXPECT_EQ(decode_error({t, 0, 0, 0, 0, 0, 0, 0, 0}), Errc::bad_message) << int(t);
}

TEST(Messages, StringAboveTheLimitIsRefused) {
    Error err;
    err.text = std::string(2000, 'x');
    const auto wire = encode(err);
    EXPECT_EQ(decode_error(wire), Errc::bad_message);
    DecodeLimits roomy;
    roomy.max_string = 4096;
    EXPECT_EQ(decode_error(wire, roomy), Errc::ok);
}

TEST(Messages, ByteVectorAboveTheLimitIsRefused) {
    const auto wire = encode(samples()[3]);  // 384 hidden bytes
    DecodeLimits tight;
    tight.max_bytes = 100;
    EXPECT_EQ(decode_error(wire, tight), Errc::bad_message);
}

TEST(Messages, HostileLengthIsCheckedBeforeAllocating) {
    // Error{session 0, code 0, text of 0xffffffff bytes} with four bytes present.
    std::vector<uint8_t> wire = {7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'};
    DecodeLimits unlimited;
    unlimited.max_string = 0xffffffffu;
    try {
        decode(wire.data(), wire.size(), unlimited);
        FAIL() << "decoded a 4 GiB string from 19 bytes";
    } catch (const NetError& e) {
        EXPECT_EQ(e.code(), Errc::truncated);
        EXPECT_NE(std::string(e.what()).find("4294967295"), std::string::npos) << e.what();
    }
    EXPECT_EQ(decode_error(wire), Errc::bad_message);  // default limit: refused by size alone
}

TEST(Messages, UnknownHiddenDtypeIsABadMessage) {
    Step step = std::get<Step>(samples()[3]);
    step.dtype = 7;
    EXPECT_EQ(decode_error(encode(step)), Errc::bad_message);
    OpenSession open = std::get<OpenSession>(samples()[2]);
    open.wire_dtype = 2;
    EXPECT_EQ(decode_error(encode(open)), Errc::bad_message);
}

TEST(Messages, ErrorsNameTheMessageAndTheLimit) {
    Error err;
    err.text = std::string(2000, 'x');
    const auto wire = encode(err);
    try {
        decode(wire.data(), wire.size());
        FAIL() << "oversize string accepted";
    } catch (const NetError& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("bad_message: error", 0), 0u) << what;
        EXPECT_NE(what.find("2000"), std::string::npos) << what;
        EXPECT_NE(what.find("1024"), std::string::npos) << what;
    }
}

TEST(Messages, ToStringIsOneLineWithByteVectorsAsSizes) {
    const std::string s = to_string(samples()[3]);
    EXPECT_EQ(s, "step{5, 17, 3, 1, <384 bytes>, 01020304.., 0, <0 bytes>}");
    Error err;
    err.text = "bad\nline";
    EXPECT_EQ(to_string(err).find('\n'), std::string::npos);
}

TEST(Errc, NamesAreDistinctAndPrefixWhat) {
    std::set<std::string_view> names;
    for (uint16_t c = 0; c <= uint16_t(Errc::internal); ++c) names.insert(errc_name(Errc(c)));
    EXPECT_EQ(names.size(), size_t(Errc::internal) + 1);
    EXPECT_EQ(std::string(NetError(Errc::decrypt_failed, "x").what()), "decrypt_failed: x");
}

}  // namespace
}  // namespace llmn::net
