// Link after the handshake: sealed frames in, sealed frames out, and closing.
// The handshake, dialing and accepting live in link_handshake.cpp.
#include "net/link.h"

#include "net/link_detail.h"

namespace llmn::net {

using namespace std::chrono_literals;
using detail::use_tuple;

namespace {

constexpr size_t kAbytes = crypto_secretstream_xchacha20poly1305_ABYTES;
// Every this many frames the sender rekeys its stream (secretstream REKEY
// tag); the receiver follows the tag, so this is a sender-only choice.
constexpr uint64_t kRekeyEvery = uint64_t(1) << 12;

std::string mib(uint64_t bytes) {
    if (bytes < (1u << 20)) return std::to_string(bytes) + " bytes";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%llu bytes (%.1f MiB)", (unsigned long long)bytes, double(bytes) / (1 << 20));
    return buf;
}

}  // namespace

Link::Link(asio::ip::tcp::socket socket, LinkOptions opts)
    : socket_(std::move(socket)), opts_(opts), wake_(socket_.get_executor()) {
    wake_.expires_at(asio::steady_timer::time_point::max());
}

Link::~Link() {
    sodium_memzero(&tx_, sizeof tx_);
    sodium_memzero(&rx_, sizeof rx_);
    asio::error_code ec;
    socket_.close(ec);
}

bool Link::is_open() const { return !closed_ && socket_.is_open(); }

void Link::send_detached(const std::shared_ptr<Link>& link, Message m) {
    if (!link || !link->is_open()) return;
    asio::co_spawn(link->executor(), [link, m = std::move(m)]() -> asio::awaitable<void> { co_await link->write(m); },
                   [](std::exception_ptr) {});
}

asio::ip::tcp::socket Link::release() {
    if (reading_ || writing_ || !out_.empty() || closed_)
        throw NetError(Errc::internal, who() + ": release() while a frame is in flight or after close");
    closed_ = true;
    wake_.cancel();
    return std::move(socket_);
}

void Link::set_peer_address() {
    asio::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (ec) return;  // keep the dialed name
    const auto addr = ep.address();
    std::string text = addr.to_string();
    if (addr.is_v6()) {
        text.insert(text.begin(), '[');
        text.push_back(']');
    }
    text += ':';
    text += std::to_string(ep.port());
    peer_addr_ = std::move(text);
}

Link::Status Link::io_status(const asio::error_code& ec, const std::string& during) const {
    if (ec == asio::error::eof) return {Errc::closed, who() + ": connection closed by the peer while " + during};
    if (closed_) return {Errc::closed, who() + ": link closed locally while " + during};
    if (ec == asio::error::operation_aborted)
        return {Errc::closed, who() + ": cancelled while " + during + " (the link closes: the stream is mid-frame)"};
    return {Errc::io_error, who() + ": " + ec.message() + " while " + during};
}

void Link::shut() {
    closed_ = true;
    asio::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);  // aborts a pending read or write
    wake_.cancel();
}

void Link::close(Errc why, const std::string& text) {
    if (closed_) return;
    // Best effort: one non-blocking attempt to say why. Skipped while a write
    // is in flight (the ERROR frame would land inside its frame).
    if (ready_ && !writing_ && socket_.is_open()) {
        try {
            Error err;
            err.code = uint16_t(why);
            err.text = text.substr(0, opts_.limits.max_string);
            const std::vector<uint8_t> frame = seal(err);
            asio::error_code ec;
            socket_.non_blocking(true, ec);
            if (!ec) socket_.write_some(asio::buffer(frame), ec);
        } catch (const std::exception&) {
            // The link closes regardless.
        }
    }
    shut();
}

// ---- reading -----------------------------------------------------------------

asio::awaitable<Link::Status> Link::read_frame(std::vector<uint8_t>& body, uint32_t max) {
    std::array<uint8_t, 4> prefix{};
    auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(prefix), use_tuple);
    if (ec) co_return io_status(ec, n == 0 ? "waiting for a frame" : "reading a frame's length prefix");
    const uint32_t len = detail::load_le32(prefix.data());
    // Bound the length before anything is allocated or read.
    if (len > max)
        co_return Status{Errc::frame_too_large,
                         who() + ": frame of " + mib(len) + " > limit of " + mib(max) +
                             (ready_ ? "" : " before the handshake completed")};
    // The buffer grows with the bytes that arrive (doubling from 64 KiB), not
    // with the announced length: a peer that announces 64 MiB and stalls holds
    // only about twice what it sent.
    body.clear();
    size_t have = 0;
    while (have < len) {
        body.resize(std::min<size_t>(len, std::max<size_t>(size_t(64) << 10, 2 * have)));
        auto [ec2, got] = co_await asio::async_read(socket_, asio::buffer(body.data() + have, body.size() - have), use_tuple);
        have += got;
        if (ec2)
            co_return io_status(ec2, "reading a frame body (" + std::to_string(have) + " of " + std::to_string(len) +
                                         " bytes arrived)");
    }
    co_return Status{};
}

asio::awaitable<Link::Status> Link::read_sealed(Message& out) {
    std::vector<uint8_t> cipher;
    Status st = co_await read_frame(cipher, opts_.max_frame);
    if (!st.ok()) co_return st;
    const uint64_t index = frames_in_++;
    if (cipher.size() < kAbytes + 1)
        co_return Status{Errc::decrypt_failed, who() + ": frame #" + std::to_string(index) + " of " +
                                                   std::to_string(cipher.size()) +
                                                   " bytes is shorter than a sealed message"};
    std::vector<uint8_t> plain(cipher.size() - kAbytes);
    unsigned long long plain_len = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&rx_, plain.data(), &plain_len, &tag, cipher.data(), cipher.size(),
                                                   nullptr, 0) != 0)
        co_return Status{Errc::decrypt_failed,
                         who() + ": frame #" + std::to_string(index) + " (" + std::to_string(cipher.size()) +
                             " bytes) failed to authenticate: tampered, replayed, reordered or dropped"};
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        co_return Status{Errc::bad_message, who() + ": unexpected end-of-stream tag in frame #" + std::to_string(index)};
    try {
        out = decode(plain.data(), size_t(plain_len), opts_.limits);
    } catch (const NetError& e) {
        co_return Status{e.code(), who() + ": frame #" + std::to_string(index) + ": " + e.what()};
    }
    const MsgType t = type_of(out);
    if (t == MsgType::hello || t == MsgType::auth)
        co_return Status{Errc::bad_message, who() + ": handshake message in frame #" + std::to_string(index) +
                                                " after the handshake completed"};
    co_return Status{};
}

asio::awaitable<Message> Link::read(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();  // the link outlives this read
    if (closed_ || !ready_) throw NetError(Errc::closed, who() + ": read on a closed link");
    if (reading_) throw NetError(Errc::internal, who() + ": read() awaited by two coroutines at once");
    reading_ = true;
    Message msg;
    // Named, not a temporary: g++ 12 may destroy a braced temporary inside a
    // co_await expression twice.
    Status on_timeout{Errc::timeout, who() + ": no message within " + detail::ms_text(timeout)};
    Status st = co_await detail::with_deadline(read_sealed(msg), timeout, std::move(on_timeout));
    reading_ = false;
    if (!st.ok()) {
        // A half-read frame leaves the stream unusable: every failure closes.
        close(st.code, std::string(errc_name(st.code)));
        throw NetError(st.code, st.detail);
    }
    co_return msg;
}

// ---- writing -----------------------------------------------------------------

std::vector<uint8_t> Link::seal(const Message& m) {
    const std::vector<uint8_t> plain = encode(m);
    const uint64_t body = uint64_t(plain.size()) + kAbytes;
    if (body > opts_.max_frame)
        throw NetError(Errc::frame_too_large, who() + ": refusing to send a message of " + mib(body) +
                                                  " > frame limit of " + mib(opts_.max_frame));
    std::vector<uint8_t> frame(4 + body);
    detail::store_le32(frame.data(), uint32_t(body));
    const unsigned char tag = (++frames_out_ % kRekeyEvery == 0) ? crypto_secretstream_xchacha20poly1305_TAG_REKEY
                                                                   : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(&tx_, frame.data() + 4, &clen, plain.data(), plain.size(), nullptr, 0,
                                               tag);
    return frame;
}

asio::awaitable<Link::Status> Link::drain(uint64_t upto) {
    while (sent_ < upto && !out_.empty()) {
        const std::vector<uint8_t>& frame = out_.front();
        auto write_one = [](Link* link, const std::vector<uint8_t>* f) -> asio::awaitable<Status> {
            auto [ec, n] = co_await asio::async_write(link->socket_, asio::buffer(*f), use_tuple);
            if (ec) co_return link->io_status(ec, "writing a frame (" + std::to_string(n) + " of " +
                                                      std::to_string(f->size()) + " bytes sent)");
            co_return Status{};
        };
        Status on_timeout{Errc::timeout, who() + ": peer took longer than " + detail::ms_text(opts_.write_timeout) +
                                             " to accept a " + mib(frame.size()) + " frame"};
        Status st = co_await detail::with_deadline(write_one(this, &frame), opts_.write_timeout, std::move(on_timeout));
        if (!st.ok()) co_return st;
        out_bytes_ -= out_.front().size();
        out_.pop_front();
        ++sent_;
    }
    co_return Status{};
}

asio::awaitable<void> Link::write(const Message& m) {
    auto self = shared_from_this();
    if (closed_ || !ready_) throw NetError(Errc::closed, who() + ": write on a closed link");
    // Sealing here, in call order, keeps stream order equal to queue order.
    std::vector<uint8_t> frame = seal(m);
    if (out_bytes_ + frame.size() > opts_.max_queued_bytes) {
        const std::string why = who() + ": peer is not reading (" + mib(out_bytes_) + " queued, limit " + mib(opts_.max_queued_bytes) + ")";
        write_error_ = Status{Errc::overloaded, why};
        shut();
        wake_.cancel();
        throw NetError(Errc::overloaded, why);
    }
    out_bytes_ += frame.size();
    out_.push_back(std::move(frame));
    const uint64_t mine = ++queued_;
    while (sent_ < mine) {
        if (write_error_) throw NetError(write_error_->code, write_error_->detail);
        if (closed_) throw NetError(Errc::closed, who() + ": link closed before a queued frame was sent");
        if (!writing_) {
            writing_ = true;
            Status st = co_await drain(mine);
            writing_ = false;
            if (!st.ok()) {
                write_error_ = st;
                shut();  // no ERROR frame: it could land inside a half-sent frame
            }
            wake_.cancel();  // the next waiter (if any) takes over the queue
        } else {
            co_await wake_.async_wait(use_tuple);
        }
    }
}

}  // namespace llmn::net
