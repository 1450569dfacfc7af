// An inference session whose layers run on remote nodes along an explicit
// route. The client holds only the tokenizer, token embeddings, final norm and
// LM head; token ids never leave it. It checks that every hop serves the same
// model id and that the hops' spans cover all layers exactly once, in order.
//
// With local_layers N > 0 the client also runs layers [0, N) itself (with its
// own KV cache), so the first hop receives hidden states after layer N instead
// of the token embeddings (which give the token ids back exactly); the route
// must then cover exactly [N, n_layer). This raises the bar for a curious first
// node; it does not hide the prompt from one that inverts hidden states.
//
// The client keeps a secure link to every hop (to open and close sessions and
// hear errors); activations flow hop to hop and the last hop returns the final
// hidden states. A dead or misbehaving hop raises RemoteError naming the hop.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"
#include "net/message_types.h"
#include "net/swarm_key.h"

namespace llmn::tensor {
class ThreadPool;
}

namespace llmn::client {

class RemoteError : public std::runtime_error {
public:
    explicit RemoteError(const std::string& what, std::string hop = "") : std::runtime_error(what), hop_(std::move(hop)) {}
    // Address of the hop that failed, or "" when no single hop is to blame.
    const std::string& hop() const { return hop_; }

private:
    std::string hop_;
};

// A hop caught by an audit (client/audit.h): positions [0, pos()) are verified.
class AuditMismatch : public RemoteError {
public:
    AuditMismatch(const std::string& what, std::string hop, int pos, std::string report)
        : RemoteError(what, std::move(hop)), pos_(pos), report_(std::move(report)) {}
    int pos() const { return pos_; }
    // The signed report (JSON, client/audit_report.h), "" when there is nothing to prove.
    const std::string& report() const { return report_; }

private:
    int pos_;
    std::string report_;
};

struct RemoteConfig {
    int n_ctx = 2048;
    int n_batch = 512;                          // tokens per STEP
    bool wire_f32 = false;                      // f16 on the wire by default
    std::chrono::milliseconds step_timeout{60000};
    std::chrono::milliseconds connect_timeout{5000};
    std::optional<net::SwarmKey> swarm_key{};   // private swarm: the links to the hops prove it
    std::chrono::milliseconds punch_window{1500};  // a hop behind a relay: try a direct connection this long first
    int local_layers = 0;                       // layers [0, N) run in this process; 0 <= N < n_layer
    // Identities expected at addresses (from probes or signed records): a node
    // answering there with another key is refused. Addresses not listed: whoever answers.
    std::map<std::string, net::Key32> pinned;
    // Audits (client/audit.h): with verify_rate > 0 the hops sign receipts and
    // auditors[i] ("host:port", "" for none) re-runs hop i's layers: after a
    // step, with probability verify_rate, the hop's latest step (sampled mode),
    // or every step since the last batch (verify_every: no wrong position
    // ever reaches the text, at the cost of a full re-run).
    double verify_rate = 0;
    bool verify_every = false;
    double verify_tolerance = 0;  // 0: kDefaultVerifyTolerance
    std::vector<std::string> auditors;
    std::optional<net::Key32> pinned_identity(const std::string& address) const {
        auto it = pinned.find(address);
        return it == pinned.end() ? std::nullopt : std::optional<net::Key32>(it->second);
    }
};

// One hop as the client learned it in the handshake.
struct HopInfo {
    std::string address;
    std::string node_id;  // hex
    int span_start = 0, span_end = 0;
    int isa = 0;  // NODE_INFO.isa: 1 + tensor::Isa its steps run on (0: not said)
};

class RemoteSession : public engine::Session {
public:
    // Connects to every hop of `route` ("host:port" each), checks model id and
    // coverage of [local_layers, n_layer), and opens a session on each. Throws
    // RemoteError naming the hop, std::invalid_argument for local_layers out of range.
    RemoteSession(std::shared_ptr<const engine::Model> model, const std::vector<std::string>& route, RemoteConfig cfg,
                  tensor::ThreadPool& pool);
    ~RemoteSession();  // closes the sessions (best effort)

    // Same contract as engine::LocalSession::eval.
    void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions = false) override;

    int n_past() const override { return n_past_; }
    int n_ctx() const override { return cfg_.n_ctx; }
    int n_vocab() const override;
    int verified() const override;
    // Waits (up to the step timeout) for every pending audit; throws AuditMismatch.
    void settle() override;
    const std::vector<HopInfo>& hops() const;
    // Positions the replicas re-ran and confirmed, summed over hops.
    uint64_t positions_audited() const;
    double audit_max_error() const;  // the largest relative error an audit let pass
    double audit_mean_error() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    RemoteConfig cfg_;
    int n_past_ = 0;
};

// Splits "a:1,b:2" into addresses; throws std::invalid_argument on an empty entry.
std::vector<std::string> parse_route(const std::string& route);

}  // namespace llmn::client
