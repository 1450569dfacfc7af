// Internal helpers shared by link.cpp and link_handshake.cpp (not installed).
#pragma once
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace llmn::net::detail {

// Errors come back as values at every I/O point (STYLE.md rule 12).
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Frames before the handshake completes hold HELLO (67 bytes) or AUTH (121).
inline constexpr uint32_t kMaxHandshakeFrame = 256;
// Label that starts every signed transcript.
inline constexpr char kTranscriptLabel[] = "llm-node/v1 link";

inline void store_le32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint32_t load_le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Completes after `d`; never throws (a cancelled wait just returns).
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(use_tuple);
}

// Runs `op` against a deadline; a zero deadline waits forever. `op` must not
// throw: `||` waits for one *successful* branch, so an exception from `op`
// would only surface after the deadline.
template <class Status>
asio::awaitable<Status> with_deadline(asio::awaitable<Status> op, std::chrono::milliseconds d, Status on_timeout) {
    using namespace asio::experimental::awaitable_operators;
    if (d.count() <= 0) co_return co_await std::move(op);
    auto r = co_await (std::move(op) || sleep_for(d));
    if (r.index() == 1) co_return on_timeout;
    co_return std::move(std::get<0>(r));
}

inline std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace llmn::net::detail
