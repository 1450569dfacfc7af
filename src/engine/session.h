// What a generator needs from an inference session, wherever its layers run:
// in this process (LocalSession) or along a route of nodes (client::RemoteSession).
#pragma once
#include <cstdint>
#include <vector>

namespace llmn::engine {

class Session {
public:
    virtual ~Session() = default;
    // Evaluates `ids` at positions n_past() onward; fills logits with [n_vocab]
    // for the last token, or [n, n_vocab] when all_positions. Throws
    // std::out_of_range when the context is full.
    virtual void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions = false) = 0;
    virtual int n_past() const = 0;
    virtual int n_ctx() const = 0;
    virtual int n_vocab() const = 0;
};

}  // namespace llmn::engine
