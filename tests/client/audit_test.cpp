// AuditBook (client/audit.h) on a two-hop chain built by hand, and the signed
// reports (client/audit_report.h): what is confirmed, what is caught, and who is blamed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "client/audit.h"
#include "client/audit_report.h"
#include "net/audit.h"
#include "net/wire_hidden.h"

namespace llmn::client {
namespace {

constexpr int kEmbd = 8;
constexpr uint8_t kF32 = uint8_t(net::WireDType::f32);

std::vector<uint8_t> bytes_of(const std::vector<float>& v) { return net::pack_hidden(v.data(), v.size(), net::WireDType::f32); }

std::vector<float> rows(int n, float seed) {
    std::vector<float> v(size_t(n) * kEmbd);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(seed + 0.37f * float(i)) * 3.0f;
    return v;
}

struct Chain {
    net::Key32 model_id{};
    net::Identity hop0 = net::Identity::generate(), hop1 = net::Identity::generate();
    uint64_t sid0 = 11, sid1 = 22;
    AuditBook book;
    Chain() : book(model_id_init(), {hop0.public_key(), hop1.public_key()}, {sid0, sid1}, {true, true}, kEmbd, 0.004, 7) {}
    static net::Key32 model_id_init() { return net::Key32{}; }

    net::Receipt receipt(const net::Identity& who, uint64_t sid, uint32_t pos, uint32_t n, const std::vector<uint8_t>& in,
                         const std::vector<uint8_t>& out, net::Sig64 prev = {}) {
        net::Receipt r;
        r.session_id = sid;
        r.pos = pos;
        r.n_tokens = n;
        r.dtype = kF32;
        r.in_digest = net::hidden_digest(in);
        r.out_digest = net::hidden_digest(out);
        r.prev_commit = prev;
        net::sign_receipt(r, model_id, who);
        r.hidden = out;
        return r;
    }
    net::Sig64 commit(const net::Identity& who, uint64_t next_sid, uint32_t pos, uint32_t n, const std::vector<uint8_t>& sent) {
        const auto t = net::commit_statement(next_sid, pos, n, kF32, net::hidden_digest(sent));
        return who.sign(t.data(), t.size());
    }
    // One honest step: hop 0 doubles, hop 1 adds one. Returns (input, hop 0's output, hop 1's output).
    std::array<std::vector<float>, 3> step(uint32_t pos, uint32_t n) {
        std::vector<float> x = rows(int(n), float(pos)), y0 = x, y1;
        for (float& v : y0) v *= 2;
        y1 = y0;
        for (float& v : y1) v += 1;
        book.on_sent(pos, n, kF32, bytes_of(x));
        EXPECT_FALSE(book.on_receipt(0, receipt(hop0, sid0, pos, n, bytes_of(x), bytes_of(y0))));
        net::Receipt last = receipt(hop1, sid1, pos, n, bytes_of(y0), bytes_of(y1), commit(hop0, sid1, pos, n, bytes_of(y0)));
        last.hidden.clear();  // the last hop's bytes come in its RESULT
        EXPECT_FALSE(book.on_receipt(1, last));
        book.on_result(pos, bytes_of(y1));
        return {x, y0, y1};
    }
};

TEST(AuditBook, HonestHopsAreConfirmedWithinTheTolerance) {
    Chain c;
    auto s0 = c.step(0, 3);
    auto s1 = c.step(3, 1);
    EXPECT_EQ(c.book.verified(), 0u);
    for (size_t hop : {size_t(0), size_t(1)}) {
        // One request per hop step, with the hop's shape (3 tokens, then 1).
        for (auto [pos, n] : {std::pair<uint32_t, uint32_t>{0, 3}, {3, 1}}) {
            AuditBook::Next next = c.book.next_request(hop, 4);
            ASSERT_FALSE(next.fault);
            ASSERT_TRUE(next.request);
            EXPECT_EQ(next.request->pos, pos);
            EXPECT_EQ(next.request->n_tokens, n);
        }
        EXPECT_FALSE(c.book.next_request(hop, 4).request);  // nothing new to send
    }
    // The replicas' outputs differ a little (another kernel): still confirmed.
    std::vector<float> r1 = s0[2], r1b = s1[2];
    for (float& v : r1) v *= 1.0005f;
    for (float& v : r1b) v *= 1.0005f;
    EXPECT_FALSE(c.book.on_replica_result(0, 0, 3, kF32, bytes_of(s0[1]), std::nullopt));
    EXPECT_FALSE(c.book.on_replica_result(0, 3, 1, kF32, bytes_of(s1[1]), std::nullopt));
    EXPECT_EQ(c.book.verified(), 0u);  // hop 1 not confirmed yet
    EXPECT_FALSE(c.book.on_replica_result(1, 0, 3, kF32, bytes_of(r1), std::nullopt));
    EXPECT_EQ(c.book.verified(), 3u);
    EXPECT_FALSE(c.book.on_replica_result(1, 3, 1, kF32, bytes_of(r1b), std::nullopt));
    EXPECT_EQ(c.book.verified(), 4u);
    EXPECT_EQ(c.book.positions_checked(), 8u);
    EXPECT_TRUE(c.book.idle(4));
}

TEST(AuditBook, AWrongRowIsPinnedOnItsHopAndPosition) {
    Chain c;
    auto s = c.step(0, 4);
    auto q = c.book.next_request(1, 4);
    ASSERT_TRUE(q.request);
    std::vector<float> replica = s[2];
    replica[2 * kEmbd + 3] += 0.5f;  // row 2 differs by ~2-3%
    auto f = c.book.on_replica_result(1, 0, 4, kF32, bytes_of(replica), std::nullopt);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->hop, 1u);
    EXPECT_EQ(f->pos, 2u);
    EXPECT_GT(f->rel_error, 0.004);
    ASSERT_TRUE(f->receipt);
    EXPECT_TRUE(f->receipt->hidden.empty());
    EXPECT_EQ(f->hop_sketch.size(), 16u);
    EXPECT_NE(f->hop_sketch, f->replica_sketch);
}

TEST(AuditBook, AHopThatSendsTheNextHopOtherBytesThanItReceiptedIsBlamed) {
    Chain c;
    std::vector<float> x = rows(1, 0), y0 = rows(1, 5), forged = rows(1, 9), y1 = rows(1, 6);
    c.book.on_sent(0, 1, kF32, bytes_of(x));
    ASSERT_FALSE(c.book.on_receipt(0, c.receipt(c.hop0, c.sid0, 0, 1, bytes_of(x), bytes_of(y0))));
    // Hop 0 signed the forged bytes for hop 1, which receipts what it got.
    ASSERT_FALSE(c.book.on_receipt(1, c.receipt(c.hop1, c.sid1, 0, 1, bytes_of(forged), bytes_of(y1), c.commit(c.hop0, c.sid1, 0, 1, bytes_of(forged)))));
    auto next = c.book.next_request(1, 1);
    ASSERT_TRUE(next.fault);
    EXPECT_EQ(next.fault->hop, 0u);
}

TEST(AuditBook, AHopThatNamesAnInputNobodyCommittedToIsBlamed) {
    Chain c;
    std::vector<float> x = rows(1, 0), y0 = rows(1, 5), other = rows(1, 9), y1 = rows(1, 6);
    c.book.on_sent(0, 1, kF32, bytes_of(x));
    ASSERT_FALSE(c.book.on_receipt(0, c.receipt(c.hop0, c.sid0, 0, 1, bytes_of(x), bytes_of(y0))));
    ASSERT_FALSE(c.book.on_receipt(1, c.receipt(c.hop1, c.sid1, 0, 1, bytes_of(other), bytes_of(y1), c.commit(c.hop0, c.sid1, 0, 1, bytes_of(y0)))));
    auto next = c.book.next_request(1, 1);
    ASSERT_TRUE(next.fault);
    EXPECT_EQ(next.fault->hop, 1u);
}

TEST(AuditBook, ReceiptsNotSignedByTheHopOrForNoStepAreFaults) {
    Chain c;
    std::vector<float> x = rows(1, 0), y0 = rows(1, 5);
    c.book.on_sent(0, 1, kF32, bytes_of(x));
    auto f = c.book.on_receipt(0, c.receipt(c.hop1, c.sid0, 0, 1, bytes_of(x), bytes_of(y0)));  // hop 1's key
    ASSERT_TRUE(f);
    EXPECT_EQ(f->hop, 0u);
    EXPECT_TRUE(c.book.on_receipt(0, c.receipt(c.hop0, c.sid0, 40, 1, bytes_of(x), bytes_of(y0))));  // no such step
    ASSERT_FALSE(c.book.on_receipt(0, c.receipt(c.hop0, c.sid0, 0, 1, bytes_of(x), bytes_of(y0))));
    EXPECT_TRUE(c.book.on_receipt(0, c.receipt(c.hop0, c.sid0, 0, 1, bytes_of(x), bytes_of(y0))));  // twice
    EXPECT_EQ(c.book.missing_receipt(), std::optional<size_t>(1));
}

TEST(AuditBook, AReplicaThatAnswersOutOfTurnIsDroppedAndNotWaitedFor) {
    Chain c;
    auto s = c.step(0, 2);
    ASSERT_TRUE(c.book.next_request(0, 2).request);
    ASSERT_TRUE(c.book.next_request(1, 2).request);
    EXPECT_FALSE(c.book.on_replica_result(0, 1, 1, kF32, bytes_of(rows(1, 0)), std::nullopt));
    EXPECT_FALSE(c.book.audited(0));
    EXPECT_FALSE(c.book.on_replica_result(1, 0, 2, kF32, bytes_of(s[2]), std::nullopt));
    EXPECT_EQ(c.book.verified(), 2u);  // only hop 1 is audited now
}

TEST(AuditMath, RelativeErrorAndSketches) {
    std::vector<float> a = {3, 4}, b = {3, 4.05f}, z = {0, 0};
    EXPECT_NEAR(relative_l2(b.data(), a.data(), 2), 0.01, 1e-6);
    EXPECT_EQ(relative_l2(z.data(), z.data(), 2), 0.0);
    EXPECT_TRUE(std::isinf(relative_l2(a.data(), z.data(), 2)));
    std::vector<float> nan = {NAN, 1};
    EXPECT_FALSE(relative_l2(nan.data(), a.data(), 2) <= 0.004);  // NaN never passes
    EXPECT_EQ(sketch_row(a.data(), 2, 5), sketch_row(a.data(), 2, 5));
}

TEST(AuditReport, SignedReportsVerifyAndForgedOnesDoNot) {
    Chain c;
    auto s = c.step(0, 1);
    ASSERT_TRUE(c.book.next_request(1, 1).request);
    std::vector<float> replica = s[2];
    for (float& v : replica) v *= 1.05f;
    auto f = c.book.on_replica_result(1, 0, 1, kF32, bytes_of(replica), std::nullopt);
    ASSERT_TRUE(f);
    const net::Identity reporter = net::Identity::generate(), replica_id = net::Identity::generate();
    const std::string report = make_audit_report(c.model_id, *f, {"127.0.0.1:1", c.hop1.public_key()}, {"127.0.0.1:2", replica_id.public_key()},
                                                 0.004, reporter);
    const ReportCheck ok = check_audit_report(report);
    EXPECT_TRUE(ok.valid) << ok.why;
    EXPECT_EQ(ok.accused, c.hop1.id_hex());

    // Pinning the receipt on another node fails: it did not sign it.
    AuditFault framed = *f;
    const std::string forged = make_audit_report(c.model_id, framed, {"127.0.0.1:3", c.hop0.public_key()}, {"127.0.0.1:2", replica_id.public_key()},
                                                 0.004, reporter);
    EXPECT_FALSE(check_audit_report(forged).valid);
    std::string tampered = report;
    tampered[tampered.find("127.0.0.1:1") + 10] = '9';
    EXPECT_FALSE(check_audit_report(tampered).valid);
    EXPECT_FALSE(check_audit_report("{not json").valid);

    // One report, or many from one reporter, does not make a node distrusted.
    EXPECT_FALSE(weigh_reports({report, report})[ok.accused].distrusted);
    const net::Identity reporter2 = net::Identity::generate(), replica2 = net::Identity::generate();
    const std::string second = make_audit_report(c.model_id, *f, {"127.0.0.1:1", c.hop1.public_key()}, {"127.0.0.1:4", replica2.public_key()},
                                                 0.004, reporter2);
    const auto standing = weigh_reports({report, second, forged});
    EXPECT_TRUE(standing.at(ok.accused).distrusted);
    EXPECT_EQ(standing.at(ok.accused).reports, 2);
    EXPECT_EQ(standing.count(c.hop0.id_hex()), 0u);  // the forged report counts for nothing
}

}  // namespace
}  // namespace llmn::client
