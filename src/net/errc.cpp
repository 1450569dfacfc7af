#include "net/errc.h"

namespace llmn::net {

// Codes travel in ERROR frames: they are frozen like message type ids.
static_assert(uint16_t(Errc::frame_too_large) == 1 && uint16_t(Errc::decrypt_failed) == 4);
static_assert(uint16_t(Errc::timeout) == 6 && uint16_t(Errc::io_error) == 8);
static_assert(uint16_t(Errc::next_hop_failed) == 14 && uint16_t(Errc::internal) == 15);
static_assert(uint16_t(Errc::not_in_swarm) == 16);

std::string_view errc_name(Errc e) {
    switch (e) {
        case Errc::ok: return "ok";
        case Errc::frame_too_large: return "frame_too_large";
        case Errc::truncated: return "truncated";
        case Errc::bad_message: return "bad_message";
        case Errc::decrypt_failed: return "decrypt_failed";
        case Errc::handshake_failed: return "handshake_failed";
        case Errc::timeout: return "timeout";
        case Errc::closed: return "closed";
        case Errc::io_error: return "io_error";
        case Errc::unknown_session: return "unknown_session";
        case Errc::wrong_model: return "wrong_model";
        case Errc::bad_span: return "bad_span";
        case Errc::overloaded: return "overloaded";
        case Errc::compute_failed: return "compute_failed";
        case Errc::next_hop_failed: return "next_hop_failed";
        case Errc::internal: return "internal";
        case Errc::not_in_swarm: return "not_in_swarm";
        case Errc::no_such_node: return "no_such_node";
        case Errc::bad_commitment: return "bad_commitment";
    }
    return "unknown_error";  // a code from a newer peer
}

}  // namespace llmn::net
