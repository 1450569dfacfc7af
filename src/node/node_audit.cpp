// Audited sessions (net/audit.h) and the test-only fault hook (fault_hook.h):
// what a node remembers of a step between its arrival and its output.
#include "net/audit.h"
#include "node/node_impl.h"

namespace llmn::node {

// False (and the owner told why) when the step must not run: its commitment
// from the previous hop does not verify.
bool Node::Impl::note_step_in(Session& s, const std::shared_ptr<net::Link>& from, const net::Step& st) {
    if (!s.audit && !fault) return true;
    Session::InStep in;
    in.pos = st.pos;
    if (s.audit) {
        in.in_digest = net::hidden_digest(st.hidden);
        const bool from_prev_hop = s.prev_hop != net::Key32{} && from->peer_identity() == s.prev_hop && s.owner.lock() != from;
        if (from_prev_hop) {
            const auto t = net::commit_statement(s.id, st.pos, st.n_tokens, st.dtype, in.in_digest);
            if (!net::verify_signature(s.prev_hop, st.commit, t.data(), t.size())) {
                send_error(s.owner.lock(), s.id, net::Errc::bad_commitment,
                           "the previous hop's commitment for positions " + std::to_string(st.pos) + "+" + std::to_string(st.n_tokens) +
                               " does not match what it sent");
                return false;
            }
            in.prev_commit = st.commit;
        }
    }
    in.fault = fault && fault->strike();
    // Bounded by the compute caps: at most the steps in flight for this session.
    s.in_steps.push_back(in);
    return true;
}

// A replay (client/audit.h): the audited hop's KV rows, from the owner of an
// audit-2 session, exactly the positions between kv_from and the step. True for plain steps.
bool Node::Impl::replay_fits(const Session& s, const net::Link& from, const net::Step& st) const {
    if (st.kv.empty()) return true;
    const auto owner = s.owner.lock();
    return s.audit_kv && owner.get() == &from && st.kv_from <= st.pos && st.kv.size() == s.cache->rows_bytes(int(st.pos - st.kv_from));
}

std::optional<Node::Impl::Session::InStep> Node::Impl::take_step_in(Session& s, int pos) {
    while (!s.in_steps.empty()) {
        Session::InStep in = s.in_steps.front();
        s.in_steps.pop_front();
        if (in.pos == uint32_t(pos)) return in;
    }
    return std::nullopt;
}

void Node::Impl::send_receipt(const Session& s, const std::shared_ptr<net::Link>& owner, const Session::InStep& in, ComputeDone& done,
                              uint8_t dtype, const net::Key32& out_digest, std::vector<uint8_t> hidden) {
    net::Receipt r;
    r.session_id = s.id;
    r.pos = uint32_t(done.pos);
    r.n_tokens = uint32_t(done.n_tokens);
    r.dtype = dtype;
    r.in_digest = in.in_digest;
    r.out_digest = out_digest;
    r.prev_commit = in.prev_commit;
    if (s.audit_kv) {
        r.kv = std::move(done.kv);
        r.kv_digest = net::hidden_digest(r.kv);
    }
    net::sign_receipt(r, model_id, identity);
    r.hidden = std::move(hidden);
    send(owner, std::move(r));
}

}  // namespace llmn::node
