#include "client/audit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "net/audit.h"
#include "net/wire_hidden.h"

namespace llmn::client {

double relative_l2(const float* got, const float* want, int n) {
    double diff = 0, norm = 0;
    for (int i = 0; i < n; ++i) {
        const double d = double(got[i]) - double(want[i]);
        diff += d * d;
        norm += double(want[i]) * double(want[i]);
    }
    if (!std::isfinite(diff)) return std::numeric_limits<double>::infinity();
    if (norm == 0) return diff == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    return std::sqrt(diff / norm);
}

std::vector<float> sketch_row(const float* row, int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> out(16, 0.0f);
    for (float& o : out) {
        double acc = 0;
        for (int i = 0; i < n; ++i) acc += double(gauss(rng)) * row[i];
        o = float(acc / std::sqrt(double(std::max(1, n))));
    }
    return out;
}

AuditBook::AuditBook(net::Key32 model_id, std::vector<net::Key32> hop_ids, std::vector<uint64_t> session_ids, std::vector<bool> audited,
                     int n_embd, double tolerance, uint64_t sketch_seed, std::vector<size_t> kv_pos_bytes)
    : model_id_(model_id), ids_(std::move(hop_ids)), hops_(ids_.size()), session_ids_(std::move(session_ids)), n_embd_(n_embd),
      tolerance_(tolerance), sketch_seed_(sketch_seed), kv_pos_bytes_(std::move(kv_pos_bytes)) {
    for (size_t i = 0; i < hops_.size() && i < audited.size(); ++i) hops_[i].audited = audited[i];
}

size_t AuditBook::row_bytes(uint8_t dtype) const { return size_t(n_embd_) * (dtype == uint8_t(net::WireDType::f32) ? 4 : 2); }

AuditFault AuditBook::fault(size_t hop, uint32_t pos, std::string what) const {
    AuditFault f;
    f.hop = hop;
    f.pos = pos;
    f.what = std::move(what);
    if (auto it = hops_[hop].steps.find(pos); it != hops_[hop].steps.end() && it->second.receipt) {
        f.receipt = *it->second.receipt;
        f.receipt->hidden.clear();
        f.receipt->kv.clear();
    }
    return f;
}

void AuditBook::on_sent(uint32_t pos, uint32_t n_tokens, uint8_t dtype, std::vector<uint8_t> bytes) {
    sent_[pos] = Sent{n_tokens, dtype, std::move(bytes), std::vector<bool>(hops_.size(), false), 0};
}

void AuditBook::on_result(uint32_t pos, std::vector<uint8_t> bytes) {
    Hop& last = hops_.back();
    if (!last.audited) return;  // only its own replica compares the last hop's output
    if (auto it = last.steps.find(pos); it != last.steps.end() && it->second.receipt && it->second.receipt->hidden.empty())
        it->second.receipt->hidden = std::move(bytes);
    else
        results_[pos] = std::move(bytes);
}

std::optional<AuditFault> AuditBook::on_receipt(size_t hop, net::Receipt r) {
    if (hop >= hops_.size()) return std::nullopt;
    auto sent = sent_.find(r.pos);
    const uint32_t pos = r.pos;
    if (sent == sent_.end())
        return fault(hop, pos, "sent a receipt for positions " + std::to_string(pos) + "+ that no pending step of this session has");
    if (r.n_tokens != sent->second.n_tokens || r.dtype != sent->second.dtype)
        return fault(hop, pos, "sent a receipt for another step shape at position " + std::to_string(pos));
    const std::vector<uint8_t> statement = net::receipt_statement(model_id_, r);
    if (!net::verify_signature(ids_[hop], r.signature, statement.data(), statement.size()))
        return fault(hop, pos, "sent a receipt its identity did not sign (position " + std::to_string(pos) + ")");
    Step& st = hops_[hop].steps[pos];
    if (st.receipt || sent->second.receipted[hop]) return fault(hop, pos, "sent two receipts for position " + std::to_string(pos));
    sent->second.receipted[hop] = true;
    ++sent->second.receipts;
    st.n_tokens = r.n_tokens;
    st.dtype = r.dtype;
    if (hop + 1 == hops_.size() && r.hidden.empty()) {
        if (auto res = results_.find(pos); res != results_.end()) {
            r.hidden = std::move(res->second);
            results_.erase(res);
        }
    }
    st.receipt = std::move(r);
    return std::nullopt;
}

const std::vector<uint8_t>* AuditBook::input_of(size_t hop, uint32_t pos) const {
    if (hop == 0) {
        auto it = sent_.find(pos);
        return it == sent_.end() ? nullptr : &it->second.bytes;
    }
    const auto& prev = hops_[hop - 1].steps;
    auto it = prev.find(pos);
    if (it == prev.end() || !it->second.receipt || it->second.receipt->hidden.empty()) return nullptr;
    return &it->second.receipt->hidden;
}

std::optional<AuditFault> AuditBook::check_step(size_t hop, uint32_t p, const net::Receipt& rc, const std::vector<uint8_t>& in) const {
    if (rc.hidden.size() != size_t(rc.n_tokens) * row_bytes(rc.dtype))
        return fault(hop, p, "receipted an output of the wrong size at position " + std::to_string(p));
    if (net::hidden_digest(rc.hidden) != rc.out_digest)
        return fault(hop, p, "returned output bytes other than the ones it receipted (position " + std::to_string(p) + ")");
    if (sampled() && (rc.kv.size() != size_t(rc.n_tokens) * kv_pos_bytes_[hop] || net::hidden_digest(rc.kv) != rc.kv_digest))
        return fault(hop, p, "receipted KV rows of the wrong size or other than it sent (position " + std::to_string(p) + ")");
    if (net::hidden_digest(in) == rc.in_digest) return std::nullopt;
    // Who is lying: the previous hop signed what it sent on (STEP.commit,
    // which this hop checked and receipted); if that signature covers the
    // digest this hop names, the previous hop receipted other bytes to us.
    if (hop == 0) return fault(hop, p, "receipted an input other than what the client sent (position " + std::to_string(p) + ")");
    const auto t = net::commit_statement(session_ids_[hop], p, rc.n_tokens, rc.dtype, rc.in_digest);
    if (net::verify_signature(ids_[hop - 1], rc.prev_commit, t.data(), t.size()))
        return fault(hop - 1, p, "sent the next hop other bytes than it receipted to the client (position " + std::to_string(p) + ")");
    return fault(hop, p, "receipted an input its previous hop never committed to (position " + std::to_string(p) + ")");
}

void AuditBook::want_replay(uint32_t end) {
    // The step the client sent last, ending at `end`: each hop's part of it.
    for (auto it = sent_.rbegin(); it != sent_.rend(); ++it) {
        if (it->first + it->second.n_tokens != end) continue;
        for (Hop& h : hops_)
            if (h.audited && it->first >= h.requested) h.wanted.push_back(it->first);
        return;
    }
}

AuditBook::Next AuditBook::next_replay(size_t hop, uint32_t n_past) {
    Next out;
    Hop& h = hops_[hop];
    while (h.audited && !h.wanted.empty() && h.wanted.front() < h.requested) h.wanted.pop_front();
    if (!h.audited || h.wanted.empty()) return out;
    // The wanted step, once its receipt, output and input are here.
    auto chosen = h.steps.find(h.wanted.front());
    if (chosen == h.steps.end() || chosen->first + chosen->second.n_tokens > n_past) return out;
    if (!chosen->second.receipt || chosen->second.receipt->hidden.empty() || !input_of(hop, chosen->first)) return out;
    // Every step from the replica's last position on: receipted, unbroken, its rows here.
    AuditRequest req;
    req.hop = hop;
    req.kv_from = h.requested;
    for (uint32_t p = h.requested; p < chosen->first;) {
        auto st = h.steps.find(p);
        if (st == h.steps.end() || !st->second.receipt) return out;  // not here yet
        const net::Receipt& rc = *st->second.receipt;
        const std::vector<uint8_t>* in = input_of(hop, p);
        if (!in || rc.hidden.empty()) return out;
        if (auto f = check_step(hop, p, rc, *in)) {
            out.fault = std::move(f);
            return out;
        }
        if (!req.kv.empty() && req.kv.size() + rc.kv.size() > kMaxReplayKvBytes) {  // rows only, this much
            req.pos = p;
            h.requested = p;
            out.request = std::move(req);
            return out;
        }
        req.kv.insert(req.kv.end(), rc.kv.begin(), rc.kv.end());
        p += rc.n_tokens;
    }
    const net::Receipt& rc = *chosen->second.receipt;
    const std::vector<uint8_t>* in = input_of(hop, chosen->first);
    if (auto f = check_step(hop, chosen->first, rc, *in)) {
        out.fault = std::move(f);
        return out;
    }
    req.pos = chosen->first;
    req.n_tokens = rc.n_tokens;
    req.dtype = rc.dtype;
    req.hidden = *in;
    h.wanted.pop_front();
    h.requested = req.pos + req.n_tokens;
    h.in_flight.emplace_back(req.pos, req.n_tokens);
    out.request = std::move(req);
    return out;
}

std::optional<AuditFault> AuditBook::compare_kv(size_t hop, uint32_t pos, const net::Receipt& ours, const std::optional<net::Receipt>& theirs) const {
    if (!sampled()) return std::nullopt;
    if (!theirs || theirs->kv.size() != ours.kv.size()) return fault(hop, pos, "");  // the caller drops such a replica
    if (theirs->kv_digest == ours.kv_digest) return std::nullopt;  // the same bits
    const size_t n = ours.kv.size() / 2;
    std::vector<float> a(n), b(n);
    net::unpack_hidden(ours.kv, uint8_t(net::WireDType::f16), n, a.data());
    net::unpack_hidden(theirs->kv, uint8_t(net::WireDType::f16), n, b.data());
    const double err = relative_l2(a.data(), b.data(), int(n));
    if (err <= tolerance_) return std::nullopt;
    AuditFault f = fault(hop, pos, "wrote attention keys/values its replica does not reproduce at positions " + std::to_string(pos) + "+" +
                                       std::to_string(ours.n_tokens) + " (relative error " + std::to_string(err) + ", tolerance " +
                                       std::to_string(tolerance_) + ")");
    f.rel_error = err;
    f.replica_receipt = theirs;
    f.replica_receipt->hidden.clear();
    f.replica_receipt->kv.clear();
    return f;
}

AuditBook::Next AuditBook::next_request(size_t hop, uint32_t n_past) {
    Next out;
    Hop& h = hops_[hop];
    if (!h.audited || h.requested >= n_past) return out;
    AuditRequest req;
    req.hop = hop;
    req.pos = h.requested;
    uint32_t p = h.requested;
    while (p < n_past) {
        auto st = h.steps.find(p);
        if (st == h.steps.end() || !st->second.receipt) break;  // not here yet
        const net::Receipt& rc = *st->second.receipt;
        const std::vector<uint8_t>* in = input_of(hop, p);
        if (!in) break;
        if (rc.hidden.empty()) break;  // the last hop's RESULT is still on its way
        if (auto f = check_step(hop, p, rc, *in)) {
            out.fault = std::move(f);
            return out;
        }
        // One hop step per request, with its shape: a replica that batches positions the
        // hop ran one by one differs by summation order, which quantized activations
        // amplify (random-weight TinyLlama Q4_0: mean error 0.007-0.015 over 16 positions,
        // honest nodes banned). The replica runs the requests one after another.
        if (req.n_tokens > 0) break;
        if (req.n_tokens == 0) req.dtype = rc.dtype;
        if (rc.dtype != req.dtype) break;
        req.hidden.insert(req.hidden.end(), in->begin(), in->end());
        req.n_tokens += rc.n_tokens;
        p += rc.n_tokens;
    }
    if (req.n_tokens == 0) return out;
    h.requested = p;
    h.in_flight.emplace_back(req.pos, req.n_tokens);
    out.request = std::move(req);
    return out;
}

std::optional<AuditFault> AuditBook::on_replica_result(size_t hop, uint32_t pos, uint32_t n_tokens, uint8_t dtype,
                                                       const std::vector<uint8_t>& bytes, std::optional<net::Receipt> replica_receipt) {
    Hop& h = hops_[hop];
    if (!h.audited || h.in_flight.empty() || h.in_flight.front() != std::make_pair(pos, n_tokens) ||
        bytes.size() != size_t(n_tokens) * row_bytes(dtype)) {
        drop_replica(hop);  // a replica that answers out of turn is no judge
        return std::nullopt;
    }
    h.in_flight.erase(h.in_flight.begin());
    if (sampled()) {  // one hop step per replay: its KV rows too
        const net::Receipt& mine = *h.steps.at(pos).receipt;
        if (!replica_receipt || mine.n_tokens != n_tokens || replica_receipt->kv.size() != mine.kv.size()) {
            drop_replica(hop);
            return std::nullopt;
        }
        if (auto f = compare_kv(hop, pos, mine, replica_receipt)) return f;
    }
    std::vector<float> theirs(size_t(n_tokens) * n_embd_), ours;
    net::unpack_hidden(bytes, dtype, theirs.size(), theirs.data());
    for (uint32_t p = pos; p < pos + n_tokens;) {
        const Step& st = h.steps.at(p);
        ours.resize(size_t(st.n_tokens) * n_embd_);
        net::unpack_hidden(st.receipt->hidden, st.dtype, ours.size(), ours.data());
        for (uint32_t row = 0; row < st.n_tokens; ++row) {
            const float* a = ours.data() + size_t(row) * n_embd_;
            const float* b = theirs.data() + size_t(p - pos + row) * n_embd_;
            const double err = relative_l2(a, b, n_embd_);
            if (err <= tolerance_) {
                max_error_ = std::max(max_error_, err);
                sum_error_ += err;
            }
            if (!(err <= tolerance_)) {
                AuditFault f = fault(hop, p, "");  // the receipt of the step that holds the row
                f.pos = p + row;
                f.rel_error = err;
                f.what = "returned hidden states its replica does not reproduce at position " + std::to_string(p + row) +
                         " (relative error " + std::to_string(err) + ", tolerance " + std::to_string(tolerance_) + ")";
                f.replica_receipt = std::move(replica_receipt);
                if (f.replica_receipt) f.replica_receipt->hidden.clear();
                if (f.replica_receipt) f.replica_receipt->kv.clear();
                f.hop_sketch = sketch_row(a, n_embd_, sketch_seed_);
                f.replica_sketch = sketch_row(b, n_embd_, sketch_seed_);
                return f;
            }
        }
        for (uint32_t row = 0; row < st.n_tokens; ++row) {
            const double err = relative_l2(ours.data() + size_t(row) * n_embd_, theirs.data() + size_t(p - pos + row) * n_embd_, n_embd_);
            h.errors.emplace_back(p + row, err);
            // The window rule is for runs of positions; a replay is one step, held to the tolerance alone.
            if (err > kSuspectError && !sampled()) h.suspects.push_back(p + row);
        }
        checked_ += st.n_tokens;
        p += st.n_tokens;
    }
    h.compared = pos + n_tokens;
    if (auto f = resolve(hop, false)) {
        f->replica_receipt = std::move(replica_receipt);
        if (f->replica_receipt) f->replica_receipt->hidden.clear();
        if (f->replica_receipt) f->replica_receipt->kv.clear();
        return f;
    }
    prune();
    return std::nullopt;
}

std::optional<AuditFault> AuditBook::resolve(size_t hop, bool closing) {
    Hop& h = hops_[hop];
    while (!h.suspects.empty()) {
        const uint32_t s = h.suspects.front();
        // The window: kWindowRows positions from s on; when closing and fewer came, the last kWindowRows there are.
        auto first = std::find_if(h.errors.begin(), h.errors.end(), [&](const auto& e) { return e.first >= s; });
        const long after = long(h.errors.end() - first);
        if (after < kWindowRows && !closing) break;
        auto begin = after >= kWindowRows ? first : h.errors.end() - std::min<long>(kWindowRows, long(h.errors.size()));
        auto end = after >= kWindowRows ? first + kWindowRows : h.errors.end();
        double sum = 0;
        for (auto it = begin; it != end; ++it) sum += it->second;
        const double mean = sum / double(std::max<long>(1, end - begin));
        if (mean > kSuspectError) {
            auto step = h.steps.upper_bound(s);
            AuditFault f = step == h.steps.begin() ? fault(hop, s, "") : fault(hop, std::prev(step)->first, "");
            f.pos = s;
            f.rel_error = first->second;
            f.what = "returned hidden states its replica does not reproduce from position " + std::to_string(s) + " on (mean relative error " +
                     std::to_string(mean) + " over " + std::to_string(end - begin) + " positions)";
            return f;
        }
        h.suspects.pop_front();  // an honest spike
    }
    h.confirmed = h.suspects.empty() ? h.compared : h.suspects.front();
    // Keep what a later window (closing included) may still need.
    const uint32_t keep_from = h.suspects.empty() ? h.compared : h.suspects.front();
    while (long(h.errors.size()) > kWindowRows && h.errors.front().first + kWindowRows < keep_from) h.errors.pop_front();
    return std::nullopt;
}

std::optional<AuditFault> AuditBook::close_windows() {
    for (size_t i = 0; i < hops_.size(); ++i)
        if (hops_[i].audited)
            if (auto f = resolve(i, true)) return f;
    // Sampled: the steps no replay took in yet still get their digest chain checked, so
    // that a hop receipting other bytes than it sent shows up in the turn that has them.
    for (size_t i = 0; sampled() && i < hops_.size(); ++i) {
        if (!hops_[i].audited) continue;
        for (auto it = hops_[i].steps.lower_bound(hops_[i].requested); it != hops_[i].steps.end(); ++it) {
            const std::vector<uint8_t>* in = input_of(i, it->first);
            if (!it->second.receipt || !in || it->second.receipt->hidden.empty()) continue;
            if (auto f = check_step(i, it->first, *it->second.receipt, *in)) return f;
        }
    }
    prune();
    return std::nullopt;
}

void AuditBook::drop_replica(size_t hop) {
    hops_[hop].audited = false;
    hops_[hop].in_flight.clear();
    hops_[hop].wanted.clear();
    prune();
}

uint32_t AuditBook::verified() const {
    uint32_t v = std::numeric_limits<uint32_t>::max();
    for (const Hop& h : hops_) {
        if (!h.audited) continue;
        // Sampled: only positions from a replay in flight on are held back.
        if (!sampled()) {
            v = std::min(v, h.confirmed);
            continue;
        }
        if (!h.wanted.empty()) v = std::min(v, h.wanted.front());
        if (!h.in_flight.empty()) v = std::min(v, h.in_flight.front().first);
    }
    return v;
}

bool AuditBook::idle(uint32_t n_past) const {
    for (const Hop& h : hops_)
        if (h.audited && (!h.in_flight.empty() || !h.wanted.empty() || (h.compared < n_past && !sampled()))) return false;
    return true;
}

std::optional<size_t> AuditBook::missing_receipt() const {
    for (const auto& [pos, sent] : sent_)
        for (size_t i = 0; i < hops_.size(); ++i)
            if (!sent.receipted[i]) return i;
    return std::nullopt;
}

// What no later request or comparison needs: a step's receipt once its own
// replica confirmed it (or it has none) and the next hop's replica was sent it.
void AuditBook::prune() {
    for (size_t i = 0; i < hops_.size(); ++i) {
        auto& steps = hops_[i].steps;
        const uint32_t own = hops_[i].audited ? hops_[i].confirmed : std::numeric_limits<uint32_t>::max();
        const uint32_t next = i + 1 < hops_.size() && hops_[i + 1].audited ? hops_[i + 1].requested : std::numeric_limits<uint32_t>::max();
        const uint32_t below = std::min(own, next);
        while (!steps.empty() && steps.begin()->first + steps.begin()->second.n_tokens <= below) steps.erase(steps.begin());
    }
    // A step's input stays while a receipt for it may still come (they are
    // checked against it) or the first hop's replica has not been sent it.
    const uint32_t first = hops_.empty() || !hops_[0].audited ? std::numeric_limits<uint32_t>::max() : hops_[0].requested;
    while (!sent_.empty() && sent_.begin()->second.receipts >= hops_.size() &&
           sent_.begin()->first + sent_.begin()->second.n_tokens <= first)
        sent_.erase(sent_.begin());
}

}  // namespace llmn::client
