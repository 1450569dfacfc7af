#include "swarm/node_record.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

namespace llmn::swarm {
namespace {

NodeRecord sample_record(const net::Identity& id) {
    NodeRecord r;
    r.address = "192.0.2.7:7000";
    r.span_start = 4;
    r.span_end = 12;
    r.n_layer = 24;
    r.model_id = net::digest256("model-a");
    r.tokens_per_s = 41.5f;
    r.free_sessions = 3;
    r.version = "0.1.0";
    r.expires_unix = 2'000'000'000;
    r.sign(id);
    return r;
}

TEST(NodeRecord, SignedRecordSurvivesEncodeDecodeAndVerifies) {
    auto id = net::Identity::generate();
    NodeRecord r = sample_record(id);
    EXPECT_EQ(r.node_id, id.public_key());
    EXPECT_TRUE(r.verify());

    std::string bytes = r.encode();
    NodeRecord back = NodeRecord::decode(bytes);
    EXPECT_EQ(back.encode(), bytes);
    EXPECT_EQ(back.address, "192.0.2.7:7000");
    EXPECT_EQ(back.span_start, 4u);
    EXPECT_EQ(back.span_end, 12u);
    EXPECT_EQ(back.n_layer, 24u);
    EXPECT_EQ(back.tokens_per_s, 41.5f);
    EXPECT_EQ(back.free_sessions, 3u);
    EXPECT_EQ(back.version, "0.1.0");
    EXPECT_EQ(back.expires_unix, 2'000'000'000u);
    EXPECT_TRUE(back.verify());
}

TEST(NodeRecord, LargestRecordFitsABep44Value) {
    auto id = net::Identity::generate();
    NodeRecord r = sample_record(id);
    r.address = std::string(NodeRecord::kMaxAddress, 'a');
    r.version = std::string(NodeRecord::kMaxVersion, 'v');
    r.sign(id);
    EXPECT_EQ(r.encode().size(), NodeRecord::kMaxEncoded);
    EXPECT_LT(r.encode().size(), 900u);
    EXPECT_TRUE(NodeRecord::decode(r.encode()).verify());
}

TEST(NodeRecord, EncodeRejectsOverlongStrings) {
    NodeRecord r = sample_record(net::Identity::generate());
    r.address = std::string(NodeRecord::kMaxAddress + 1, 'a');
    EXPECT_THROW(r.encode(), RecordError);
    EXPECT_FALSE(r.verify());
}

TEST(NodeRecord, ChangingAnySignedFieldBreaksTheSignature) {
    auto id = net::Identity::generate();
    const NodeRecord good = sample_record(id);
    const std::vector<std::pair<const char*, std::function<void(NodeRecord&)>>> edits = {
        {"node_id", [](NodeRecord& r) { r.node_id = net::Identity::generate().public_key(); }},
        {"address", [](NodeRecord& r) { r.address = "192.0.2.8:7000"; }},
        {"span_start", [](NodeRecord& r) { r.span_start = 3; }},
        {"span_end", [](NodeRecord& r) { r.span_end = 13; }},
        {"n_layer", [](NodeRecord& r) { r.n_layer = 25; }},
        {"model_id", [](NodeRecord& r) { r.model_id = net::digest256("model-b"); }},
        {"tokens_per_s", [](NodeRecord& r) { r.tokens_per_s = 41.6f; }},
        {"free_sessions", [](NodeRecord& r) { r.free_sessions = 4; }},
        {"version", [](NodeRecord& r) { r.version = "0.1.1"; }},
        {"expires_unix", [](NodeRecord& r) { r.expires_unix += 1; }},
        {"signature", [](NodeRecord& r) { r.signature[10] ^= 1; }},
    };
    for (const auto& [field, edit] : edits) {
        NodeRecord r = good;
        edit(r);
        EXPECT_FALSE(r.verify()) << "edited " << field;
    }
    // Re-signing with another key gives a valid record of that other node.
    NodeRecord other = good;
    other.sign(net::Identity::generate());
    EXPECT_TRUE(other.verify());
    EXPECT_NE(other.node_id, good.node_id);
}

TEST(NodeRecord, EveryFlippedByteEitherFailsToDecodeOrFailsToVerify) {
    const std::string bytes = sample_record(net::Identity::generate()).encode();
    for (size_t i = 0; i < bytes.size(); ++i) {
        std::string bad = bytes;
        bad[i] = char(bad[i] ^ 0x40);
        try {
            EXPECT_FALSE(NodeRecord::decode(bad).verify()) << "byte " << i;
        } catch (const RecordError&) {
        }
    }
}

TEST(NodeRecord, EveryTruncationIsRejectedWithAClearError) {
    const std::string bytes = sample_record(net::Identity::generate()).encode();
    for (size_t n = 0; n < bytes.size(); ++n)
        EXPECT_THROW(NodeRecord::decode(std::string_view(bytes).substr(0, n)), RecordError) << "length " << n;
    try {
        NodeRecord::decode(std::string_view(bytes).substr(0, 40));
        FAIL() << "expected a RecordError";
    } catch (const RecordError& e) {
        EXPECT_NE(std::string(e.what()).find("remain"), std::string::npos) << e.what();
    }
}

// One named case per defect; each builds on a valid signed encoding.
TEST(NodeRecord, MalformedFieldsAreRejected) {
    auto id = net::Identity::generate();
    const NodeRecord good = sample_record(id);
    auto encode_with = [&](auto edit) {
        NodeRecord r = good;
        edit(r);
        return r.encode();
    };
    const size_t addr_len_at = 1 + 32;
    struct Case {
        const char* name;
        std::string bytes;
        const char* message;  // a substring of what()
    };
    std::vector<Case> cases;
    std::string s = good.encode();
    cases.push_back({"trailing byte", s + "x", "trailing"});
    std::string fmt = s;
    fmt[0] = 2;
    cases.push_back({"unknown format", fmt, "format 2"});
    std::string len = s;
    len[addr_len_at] = char(200);
    cases.push_back({"address length over limit", len, "address length 200"});
    cases.push_back({"oversized input", std::string(NodeRecord::kMaxEncoded + 1, '\0'), "limit"});
    cases.push_back({"empty span", encode_with([](NodeRecord& r) { r.span_end = r.span_start; }), "span"});
    cases.push_back({"span past n_layer", encode_with([](NodeRecord& r) { r.span_end = 25; }), "span"});
    cases.push_back({"zero layers", encode_with([](NodeRecord& r) { r.n_layer = 0; }), "n_layer"});
    cases.push_back({"too many layers", encode_with([](NodeRecord& r) { r.n_layer = 5000; }), "n_layer"});
    cases.push_back({"NaN throughput",
                     encode_with([](NodeRecord& r) { r.tokens_per_s = std::numeric_limits<float>::quiet_NaN(); }),
                     "tokens_per_s"});
    cases.push_back({"negative throughput", encode_with([](NodeRecord& r) { r.tokens_per_s = -1.f; }), "tokens_per_s"});
    cases.push_back({"empty address", encode_with([](NodeRecord& r) { r.address.clear(); }), "address is empty"});
    cases.push_back({"empty input", "", "format"});
    for (const auto& c : cases) {
        try {
            NodeRecord::decode(c.bytes);
            ADD_FAILURE() << c.name << ": decoded";
        } catch (const RecordError& e) {
            EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
        }
    }
}

TEST(NodeRecord, RandomGarbageNeverDecodesToAVerifiedRecord) {
    std::mt19937 rng(1234);
    const std::string good = sample_record(net::Identity::generate()).encode();
    for (int i = 0; i < 5000; ++i) {
        std::string bytes;
        if (i % 2 == 0) {
            bytes.resize(rng() % 400);
            for (auto& c : bytes) c = char(rng());
        } else {  // plausible prefix, random tail
            bytes = good.substr(0, rng() % good.size());
            size_t extra = rng() % 100;
            for (size_t k = 0; k < extra; ++k) bytes.push_back(char(rng()));
        }
        try {
            EXPECT_FALSE(NodeRecord::decode(bytes).verify());
        } catch (const RecordError&) {
        }
    }
}

TEST(NodeRecord, ExpiryIsComparedWithTheGivenClock) {
    NodeRecord r = sample_record(net::Identity::generate());
    EXPECT_FALSE(r.expired(r.expires_unix - 1));
    EXPECT_TRUE(r.expired(r.expires_unix));
}

}  // namespace
}  // namespace llmn::swarm
