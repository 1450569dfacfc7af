// An authenticated, encrypted, framed link over TCP (../shared/DESIGN.md,
// "Secure links"). Handshake: both sides send HELLO (identity key, fresh
// crypto_kx key), then AUTH (signature over the transcript + secretstream
// header). Afterwards every frame is `u32 length | secretstream ciphertext of
// (u8 type | payload)`, one stream per direction, so a tampered, replayed,
// reordered or dropped frame fails to decrypt and closes the link. The length
// prefix is bounded before the body is read. A link never falls back to plaintext.
//
// All I/O runs on the io_context the socket belongs to, and a link is used from
// that one thread (STYLE.md rule 11); read() may be awaited by one coroutine at
// a time, write() by many (writes are queued in order).
#pragma once
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <sodium.h>
#include <string>

#include "net/identity.h"
#include "net/messages.h"

namespace llmn::net {

struct LinkOptions {
    uint32_t max_frame = 64u << 20;  // bytes of one frame (after the length prefix)
    std::chrono::milliseconds handshake_timeout{5000};  // dialing + both HELLO/AUTH exchanges
    std::chrono::milliseconds write_timeout{60000};     // one queued frame to the socket; zero: none
    DecodeLimits limits{};
    // Private swarm (net/swarm_key.h): both sides must prove this key in the
    // handshake, which fails with Errc::not_in_swarm when the peer has no key,
    // another key, or a key while this side has none. Also mixed into the
    // session keys. Unset: a public link, which refuses any keyed peer.
    std::optional<std::array<uint8_t, 32>> swarm_key{};
    // Through a relay: also try a direct TCP connection (hole punching) for this
    // long, and keep the relayed one when it fails. Off for short-lived links (probes).
    std::chrono::milliseconds punch_window{0};
    // Sealed bytes waiting for the socket before write() gives up on the peer
    // (it is not reading): the link closes with Errc::overloaded.
    size_t max_queued_bytes = size_t(64) << 20;
    // Dial from this local IP (a node listening on one address keeps its
    // outgoing links on it too). Unset: the system's choice. (No std::string
    // here: g++ 12 destroys a coroutine's by-value parameter twice when it
    // throws before its first suspension.)
    std::optional<asio::ip::address> bind_ip;
};

class Link : public std::enable_shared_from_this<Link> {
public:
    // Dials `host:port` and runs the handshake. When `expected_peer` is set the
    // peer's identity must equal it. Throws NetError naming the address.
    // "ID@host:port" (64 hex digits, then a relay's address) dials the relay and
    // runs the handshake with node ID end to end through it (net/relay.h).
    static asio::awaitable<std::shared_ptr<Link>> connect(const std::string& host_port, const Identity& self,
                                                          LinkOptions opts = {}, std::optional<Key32> expected_peer = {});
    // Runs the listener's side of the handshake on an accepted socket.
    static asio::awaitable<std::shared_ptr<Link>> accept(asio::ip::tcp::socket socket, const Identity& self, LinkOptions opts = {});
    // Runs the dialer's side of the handshake on a connected socket (a spliced or
    // punched one); `name` is the address shown in errors and peer_address().
    static asio::awaitable<std::shared_ptr<Link>> dial_over(asio::ip::tcp::socket socket, const std::string& name, const Identity& self,
                                                            LinkOptions opts, std::optional<Key32> expected_peer);

    // Next message; throws NetError (closed, timeout, frame_too_large,
    // decrypt_failed, bad_message, ...) and the link is then closed.
    // A zero timeout waits forever.
    asio::awaitable<Message> read(std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
    // Seals and sends; throws NetError when the link is closed or the write fails
    // (a failed or timed-out write closes the link). `m` is sealed before the
    // first suspension, so it may be a temporary even when write() is co_spawned.
    asio::awaitable<void> write(const Message& m);
    // Sends `m` from a detached coroutine on the link's executor, without
    // waiting; a failure closes the link (its reader notices). Null or closed: nothing.
    static void send_detached(const std::shared_ptr<Link>& link, Message m);
    // Best-effort ERROR frame (session 0) then close; idempotent.
    void close(Errc why, const std::string& text = "");
    bool is_open() const;
    // Hands the TCP socket over (the relay splices it; the dialer runs a new
    // handshake through it) and leaves this link closed. Only while no read or
    // write is pending: a frame boundary, since reads take exact frames.
    asio::ip::tcp::socket release();
    // Seconds the handshake took (about one round trip for the listener).
    double handshake_seconds() const { return handshake_s_; }
    // Sealed bytes queued for the socket and not yet written (back-pressure).
    size_t queued_bytes() const { return out_bytes_; }

    const Key32& peer_identity() const { return peer_id_; }
    const std::string& peer_address() const { return peer_addr_; }  // "ip:port"
    asio::any_io_executor executor() { return socket_.get_executor(); }

    ~Link();

private:
    // Internal coroutines return errors as values (STYLE.md rule 12): an
    // exception would make awaitable_operators `||` wait for the deadline.
    struct Status {
        Errc code = Errc::ok;
        std::string detail;
        bool ok() const { return code == Errc::ok; }
    };

    explicit Link(asio::ip::tcp::socket socket, LinkOptions opts);
    asio::awaitable<Status> dial(std::string host, std::string port, const Identity& self, std::optional<Key32> expected_peer);
    asio::awaitable<Status> handshake(const Identity& self, bool dialer, std::optional<Key32> expected_peer);
    Status check_swarm_proof(const Key32& proof, std::vector<uint8_t> signed_transcript) const;
    asio::awaitable<Status> write_plain(const Message& m);
    asio::awaitable<Status> read_plain(Message& out, MsgType want);
    asio::awaitable<Status> read_frame(std::vector<uint8_t>& body, uint32_t max);
    asio::awaitable<Status> read_sealed(Message& out);
    asio::awaitable<Status> drain(uint64_t upto);
    std::vector<uint8_t> seal(const Message& m);
    Status io_status(const asio::error_code& ec, const std::string& during) const;
    std::string who() const { return "peer " + peer_addr_; }
    void set_peer_address();
    void shut();

    asio::ip::tcp::socket socket_;
    LinkOptions opts_;
    Key32 peer_id_{};
    std::string peer_addr_;
    crypto_secretstream_xchacha20poly1305_state tx_{}, rx_{};
    bool ready_ = false, closed_ = false, reading_ = false;
    uint64_t frames_in_ = 0, frames_out_ = 0;
    double handshake_s_ = 0;
    // Writes are sealed in call order and queued; one writer at a time drains
    // the queue up to its own frame, then hands over to the next waiter.
    std::deque<std::vector<uint8_t>> out_;
    bool writing_ = false;
    uint64_t queued_ = 0, sent_ = 0;
    size_t out_bytes_ = 0;
    std::optional<Status> write_error_;
    asio::steady_timer wake_;  // never expires; cancel() wakes the waiting writers
};

}  // namespace llmn::net
