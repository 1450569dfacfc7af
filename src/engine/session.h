// What a generator needs from an inference session, wherever its layers run:
// in this process (LocalSession) or along a route of nodes (client::RemoteSession).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmn::engine {

// Thrown by eval or settle of an audited session (client/audit.h) that found
// a remote hop's output wrong at position `pos`: the session now holds
// positions [0, pos), recomputed on a good route, and the caller evaluates
// its tokens again from there. Only positions >= verified() are ever rewound.
class Rewind : public std::runtime_error {
public:
    Rewind(int pos, const std::string& why) : std::runtime_error(why), pos_(pos) {}
    int pos() const { return pos_; }

private:
    int pos_;
};

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
    // Positions [0, verified()) are final. An audited session confirms its
    // positions some steps after it returns them; others return n_past().
    virtual int verified() const { return n_past(); }
    // Waits until every position evaluated so far is verified (or throws Rewind).
    virtual void settle() {}
};

}  // namespace llmn::engine
