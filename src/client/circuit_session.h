// An inference session over an onion circuit, a ring:
//   client -> [entry relay] -> span 1 -> ... -> span N -> [exit relay] -> client
// The client links only to the first and the last member of the ring (the
// relays, when it uses them), so no span node learns who is asking. One EXTEND
// message carries the onion: layer k, sealed to hop k's onion key, names only
// hop k's next hop, its span and its keys; the previous hop is the link it came
// on. STEP payloads between the client and span 1, and between span N and the
// client, are sealed end to end (net/onion.h): relays forward ciphertext.
// Spans are chained over their own encrypted links. See THREAT_MODEL.md.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "client/remote_session.h"
#include "net/probe.h"

namespace llmn::client {

struct CircuitPlan {
    std::vector<std::string> spans;  // span nodes in layer order (they must cover every layer from local_layers on)
    std::string entry_relay;         // "" : the client talks to span 1 directly
    std::string exit_relay;          // "" : span N answers the client directly
    // What the members said (identity, span, onion key), e.g. from
    // net::probe_through. Members missing here are probed through the entry
    // relay (the exit, without one), so the client contacts no span node itself.
    std::vector<net::ProbedNode> known;
};

class CircuitSession : public engine::Session {
public:
    // Learns the members' onion keys and spans (a NODE_INFO probe), builds the
    // circuit and waits until the exit reports it ready. Throws RemoteError.
    CircuitSession(std::shared_ptr<const engine::Model> model, const CircuitPlan& plan, RemoteConfig cfg, tensor::ThreadPool& pool);
    ~CircuitSession();  // tears the circuit down (best effort)

    void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions = false) override;
    int n_past() const override { return n_past_; }
    int n_ctx() const override { return cfg_.n_ctx; }
    int n_vocab() const override;
    // The identity this circuit's client used (fresh per circuit), hex.
    std::string client_id() const;       // our identity on the entry link (hex)
    std::string exit_client_id() const;  // and on the exit link: another one, so the two ends cannot be paired by key

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    RemoteConfig cfg_;
    int n_past_ = 0;
};

}  // namespace llmn::client
