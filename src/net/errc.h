// Protocol violations and link failures. Each value maps 1:1 onto an ERROR
// frame code and a log line; a violation closes only the link it came from.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace llmn::net {

enum class Errc : uint16_t {
    ok = 0,
    frame_too_large = 1,     // length prefix above the configured maximum
    truncated = 2,           // payload shorter than its fields say
    bad_message = 3,         // unknown type, bad field value, trailing bytes
    decrypt_failed = 4,      // tampered, replayed, reordered or dropped frame
    handshake_failed = 5,    // bad version, bad signature, wrong peer identity
    timeout = 6,             // a deadline passed (handshake, read, idle)
    closed = 7,              // the peer closed the connection
    io_error = 8,            // socket error
    unknown_session = 9,     // STEP/CLOSE for a session this peer does not own
    wrong_model = 10,        // model id differs from the node's
    bad_span = 11,           // span not served here
    overloaded = 12,         // session or memory cap reached
    compute_failed = 13,     // the forward pass threw (e.g. context full)
    next_hop_failed = 14,    // the next hop could not be reached or failed
    internal = 15,
    not_in_swarm = 16,       // private swarm: the peer proved no swarm key, or another one
    no_such_node = 17,       // relay: the node named is not relayed here (or its links are used up)
    bad_commitment = 18,     // audited session: the previous hop's STEP commitment does not verify
};

std::string_view errc_name(Errc e);

// Thrown by decoders and links; what() is "<errc_name>: <detail>".
class NetError : public std::runtime_error {
public:
    NetError(Errc code, const std::string& detail) : std::runtime_error(std::string(errc_name(code)) + ": " + detail), code_(code) {}
    Errc code() const { return code_; }

private:
    Errc code_;
};

}  // namespace llmn::net
