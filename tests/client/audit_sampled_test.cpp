// AuditBook in sampled mode (client/audit.h): a replay is the hop's KV rows
// since the replica's last position plus the input of the hop's latest step;
// the replica's output and KV rows for that step must match the hop's.
#include <gtest/gtest.h>

#include <cmath>

#include "client/audit.h"
#include "net/audit.h"
#include "net/wire_hidden.h"

namespace llmn::client {
namespace {

constexpr int kEmbd = 8;
constexpr uint8_t kF32 = uint8_t(net::WireDType::f32);

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) { return net::pack_hidden(v.data(), v.size(), net::WireDType::f32); }

std::vector<float> rows(size_t n, float seed) {
    std::vector<float> v(n);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(seed + 0.37f * float(i)) * 3.0f;
    return v;
}

// KV rows as a node sends them: f16 values.
std::vector<uint8_t> kv_rows(size_t bytes, float seed) {
    const std::vector<float> v = rows(bytes / 2, seed);
    return net::pack_hidden(v.data(), v.size(), net::WireDType::f16);
}

// One hop (hop 0) whose replica replays; its output is twice its input.
struct OneHop {
    net::Key32 model_id{};
    net::Identity hop = net::Identity::generate(), replica = net::Identity::generate();
    uint64_t sid = 5;
    size_t kv_pos;
    AuditBook book;
    explicit OneHop(size_t kv_pos_bytes = 64)
        : kv_pos(kv_pos_bytes), book(net::Key32{}, {hop.public_key()}, {sid}, {true}, kEmbd, 0.006, 3, {kv_pos_bytes}) {}

    net::Receipt receipt(const net::Identity& who, uint32_t pos, uint32_t n, const std::vector<uint8_t>& in, const std::vector<uint8_t>& out,
                         std::vector<uint8_t> kv) {
        net::Receipt r;
        r.session_id = sid;
        r.pos = pos;
        r.n_tokens = n;
        r.dtype = kF32;
        r.in_digest = net::hidden_digest(in);
        r.out_digest = net::hidden_digest(out);
        r.kv_digest = net::hidden_digest(kv);
        net::sign_receipt(r, model_id, who);
        r.hidden = out;
        r.kv = std::move(kv);
        return r;
    }
    struct Done {
        std::vector<uint8_t> in, out, kv;
    };
    Done step(uint32_t pos, uint32_t n) {
        std::vector<float> x = rows(size_t(n) * kEmbd, float(pos)), y = x;
        for (float& v : y) v *= 2;
        Done d{f32_bytes(x), f32_bytes(y), kv_rows(n * kv_pos, float(pos) + 0.5f)};
        book.on_sent(pos, n, kF32, d.in);
        book.on_result(pos, d.out);  // a one-hop route: its output is the RESULT
        net::Receipt r = receipt(hop, pos, n, d.in, d.out, d.kv);
        r.hidden.clear();
        EXPECT_FALSE(book.on_receipt(0, std::move(r)));
        return d;
    }
};

TEST(AuditSampled, AReplayIsTheHistorysKvRowsAndTheLatestStep) {
    OneHop c;
    OneHop::Done a = c.step(0, 3), b = c.step(3, 1);
    EXPECT_FALSE(c.book.next_replay(0, 4).request);  // none wanted
    EXPECT_GE(c.book.verified(), 4u);                // so nothing is held back
    OneHop::Done last = c.step(4, 1);
    c.book.want_replay(5);  // the coin came up after the step ending at 5
    AuditBook::Next next = c.book.next_replay(0, 5);
    ASSERT_FALSE(next.fault);
    ASSERT_TRUE(next.request);
    const AuditRequest& q = *next.request;
    EXPECT_EQ(q.pos, 4u);
    EXPECT_EQ(q.n_tokens, 1u);
    EXPECT_EQ(q.kv_from, 0u);
    std::vector<uint8_t> history = a.kv;
    history.insert(history.end(), b.kv.begin(), b.kv.end());
    EXPECT_EQ(q.kv, history);
    EXPECT_EQ(q.hidden, last.in);
    EXPECT_FALSE(c.book.next_replay(0, 5).request);  // nothing else wanted
    EXPECT_EQ(c.book.verified(), 4u);                // the replayed step waits; the text before it does not
    EXPECT_FALSE(c.book.idle(5));
    // The replica agrees to the bit, KV rows included.
    auto f = c.book.on_replica_result(0, 4, 1, kF32, last.out, c.receipt(c.replica, 4, 1, last.in, last.out, last.kv));
    EXPECT_FALSE(f);
    EXPECT_TRUE(c.book.idle(5));
    EXPECT_GE(c.book.verified(), 5u);
    EXPECT_EQ(c.book.positions_checked(), 1u);
    // The next replay starts where the replica is.
    OneHop::Done more = c.step(5, 2);
    c.book.want_replay(7);
    next = c.book.next_replay(0, 7);
    ASSERT_TRUE(next.request);
    EXPECT_EQ(next.request->kv_from, 5u);
    EXPECT_TRUE(next.request->kv.empty());
    EXPECT_EQ(next.request->pos, 5u);
    EXPECT_EQ(next.request->n_tokens, 2u);
}

TEST(AuditSampled, AWantedStepWaitsForItsReceipt) {
    OneHop c;
    std::vector<float> x = rows(kEmbd, 1.0f);
    const std::vector<uint8_t> in = f32_bytes(x), kv = kv_rows(c.kv_pos, 2.0f);
    c.book.on_sent(0, 1, kF32, in);
    c.book.on_result(0, in);
    c.book.want_replay(1);
    EXPECT_FALSE(c.book.next_replay(0, 1).request);  // no receipt yet
    EXPECT_EQ(c.book.verified(), 0u);                // and the text waits for it
    EXPECT_FALSE(c.book.idle(1));
    net::Receipt r = c.receipt(c.hop, 0, 1, in, in, kv);
    r.hidden.clear();
    ASSERT_FALSE(c.book.on_receipt(0, r));
    AuditBook::Next next = c.book.next_replay(0, 1);
    ASSERT_TRUE(next.request);
    EXPECT_EQ(next.request->pos, 0u);
}

TEST(AuditSampled, KvRowsTheReplicaDoesNotReproduceAreCaught) {
    OneHop c;
    OneHop::Done s = c.step(0, 2);
    c.book.want_replay(2);
    ASSERT_TRUE(c.book.next_replay(0, 2).request);
    std::vector<uint8_t> other = kv_rows(s.kv.size(), 9.0f);
    auto f = c.book.on_replica_result(0, 0, 2, kF32, s.out, c.receipt(c.replica, 0, 2, s.in, s.out, other));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->hop, 0u);
    EXPECT_NE(f->what.find("keys/values"), std::string::npos) << f->what;
    ASSERT_TRUE(f->receipt);
    EXPECT_TRUE(f->receipt->kv.empty());
}

TEST(AuditSampled, AnOutputTheReplicaDoesNotReproduceIsCaught) {
    OneHop c;
    OneHop::Done s = c.step(0, 1);
    c.book.want_replay(1);
    ASSERT_TRUE(c.book.next_replay(0, 1).request);
    std::vector<float> y(kEmbd);
    net::unpack_hidden(s.out, kF32, y.size(), y.data());
    for (float& v : y) v *= 1.01f;  // 1% off
    auto f = c.book.on_replica_result(0, 0, 1, kF32, f32_bytes(y), c.receipt(c.replica, 0, 1, s.in, f32_bytes(y), s.kv));
    ASSERT_TRUE(f);
    EXPECT_NEAR(f->rel_error, 0.01, 1e-3);
}

TEST(AuditSampled, KvRowsOtherThanReceiptedAreTheHopsFault) {
    OneHop c;
    std::vector<float> x = rows(kEmbd, 1.0f);
    const std::vector<uint8_t> in = f32_bytes(x), out = f32_bytes(x), kv = kv_rows(c.kv_pos, 2.0f);
    c.book.on_sent(0, 1, kF32, in);
    c.book.on_result(0, out);
    net::Receipt r = c.receipt(c.hop, 0, 1, in, out, kv);
    r.hidden.clear();
    r.kv = kv_rows(c.kv_pos, 3.0f);  // not the rows it signed
    ASSERT_FALSE(c.book.on_receipt(0, r));
    c.book.want_replay(1);
    AuditBook::Next next = c.book.next_replay(0, 1);
    ASSERT_TRUE(next.fault);
    EXPECT_EQ(next.fault->hop, 0u);
    EXPECT_FALSE(next.request);
}

TEST(AuditSampled, LongHistoriesGoAheadInRowsOnlyRequests) {
    OneHop c(size_t(3) << 20);  // 3 MiB of KV rows per position
    for (uint32_t p = 0; p < 5; ++p) c.step(p, 1);
    c.book.want_replay(5);
    AuditBook::Next first = c.book.next_replay(0, 5);
    ASSERT_TRUE(first.request);
    EXPECT_EQ(first.request->n_tokens, 0u);  // rows only: positions 0 and 1
    EXPECT_EQ(first.request->kv_from, 0u);
    EXPECT_EQ(first.request->pos, 2u);
    EXPECT_EQ(first.request->kv.size(), size_t(6) << 20);
    AuditBook::Next second = c.book.next_replay(0, 5);
    ASSERT_TRUE(second.request);
    EXPECT_EQ(second.request->kv_from, 2u);
    EXPECT_EQ(second.request->pos, 4u);
    EXPECT_EQ(second.request->n_tokens, 1u);
    EXPECT_LE(second.request->kv.size(), kMaxReplayKvBytes);
}

}  // namespace
}  // namespace llmn::client
