#include "net/punch.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <sys/socket.h>

#include "net/errc.h"
#include "net/link_detail.h"

namespace llmn::net::detail {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

std::string text_of(const tcp::endpoint& ep) {
    const std::string ip = ep.address().to_string();
    return (ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(ep.port());
}

// Open + reuse options + bind; an error code rather than an exception.
asio::error_code open_bound(tcp::socket& s, const tcp::endpoint& local) {
    asio::error_code ec;
    s.open(local.protocol(), ec);
    if (!ec) s.set_option(tcp::socket::reuse_address(true), ec);
    if (!ec) s.set_option(reuse_port(true), ec);
    if (!ec) s.bind(local, ec);
    return ec;
}

// One connect against a deadline: the error code, or timed_out.
asio::awaitable<asio::error_code> connect_within(tcp::socket& s, const tcp::endpoint& to, std::chrono::milliseconds d) {
    using namespace asio::experimental::awaitable_operators;
    auto r = co_await (s.async_connect(to, use_tuple) || sleep_for(d));
    if (r.index() == 1) co_return asio::error::timed_out;
    co_return std::get<0>(std::get<0>(r));
}

}  // namespace

std::optional<tcp::endpoint> parse_endpoint(const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    std::string host = host_port.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port = host_port.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
        return std::nullopt;
    asio::error_code ec;
    const auto ip = asio::ip::make_address(host, ec);
    if (ec) return std::nullopt;
    return tcp::endpoint(ip, uint16_t(std::stoul(port)));
}

asio::awaitable<tcp::socket> connect_reusable(const std::string& host_port, std::optional<tcp::endpoint> local,
                                              std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    std::optional<tcp::endpoint> to = parse_endpoint(host_port);
    if (!to) {  // a name: resolve it
        const auto colon = host_port.rfind(':');
        if (colon == std::string::npos) throw NetError(Errc::bad_message, "address '" + host_port + "' is not host:port");
        tcp::resolver resolver(ex);
        auto [ec, results] = co_await resolver.async_resolve(host_port.substr(0, colon), host_port.substr(colon + 1), use_tuple);
        if (ec || results.empty()) throw NetError(Errc::io_error, "peer " + host_port + ": cannot resolve: " + ec.message());
        to = *results.begin();
    }
    tcp::socket s(ex);
    const tcp::endpoint from = local ? *local : tcp::endpoint(to->protocol(), 0);
    if (auto ec = open_bound(s, from)) throw NetError(Errc::io_error, "peer " + host_port + ": cannot bind " + text_of(from) + ": " + ec.message());
    if (auto ec = co_await connect_within(s, *to, timeout))
        throw NetError(ec == asio::error::timed_out ? Errc::timeout : Errc::io_error,
                       "peer " + host_port + ": cannot connect: " + (ec == asio::error::timed_out ? "no answer within " + ms_text(timeout) : ec.message()));
    co_return s;
}

namespace {

// Dials `peer` from `local` until an attempt succeeds or the deadline.
asio::awaitable<std::optional<tcp::socket>> dial_loop(tcp::endpoint local, tcp::endpoint peer, Clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    while (Clock::now() < deadline) {
        tcp::socket s(ex);
        if (open_bound(s, local)) break;  // the port is gone: nothing to punch from
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        // A stealthy NAT drops a SYN that comes before its own went out; the
        // other end's SYN then gets through to us and the connection forms.
        // A reset (no NAT, or one that answers) makes us try again shortly.
        const asio::error_code ec = co_await connect_within(s, peer, std::max(left, std::chrono::milliseconds(1)));
        if (!ec) co_return std::optional<tcp::socket>(std::move(s));
        asio::error_code ignored;
        s.close(ignored);
        if (ec == asio::error::timed_out) break;
        co_await sleep_for(std::chrono::milliseconds(20));
    }
    co_await sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(deadline - Clock::now(), Clock::duration(0))));
    co_return std::nullopt;
}

// Accepts the peer's connection on `local` (where no NAT is in between, its SYN
// may come before ours leaves: then it finds a listener rather than a reset).
asio::awaitable<std::optional<tcp::socket>> accept_loop(tcp::endpoint local, tcp::endpoint peer, Clock::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acc(ex);
    asio::error_code ec;
    acc.open(local.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc.set_option(reuse_port(true), ec);
    if (!ec) acc.bind(local, ec);
    if (!ec) acc.listen(4, ec);
    while (!ec && Clock::now() < deadline) {
        tcp::socket s(ex);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto r = co_await (acc.async_accept(s, use_tuple) || sleep_for(std::max(left, std::chrono::milliseconds(1))));
        if (r.index() == 1) break;
        ec = std::get<0>(std::get<0>(r));
        asio::error_code e2;
        if (!ec && s.remote_endpoint(e2) == peer) co_return std::optional<tcp::socket>(std::move(s));
        s.close(e2);  // someone else: not ours
        ec = {};
    }
    co_await sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(deadline - Clock::now(), Clock::duration(0))));
    co_return std::nullopt;
}

}  // namespace

asio::awaitable<std::optional<tcp::socket>> punch(tcp::endpoint local, tcp::endpoint peer, std::chrono::milliseconds window) {
    using namespace asio::experimental::awaitable_operators;
    const auto deadline = Clock::now() + window;
    // Whichever gives the connection first; both run out at the deadline.
    auto r = co_await (dial_loop(local, peer, deadline) || accept_loop(local, peer, deadline));
    co_return r.index() == 0 ? std::move(std::get<0>(r)) : std::move(std::get<1>(r));
}

}  // namespace llmn::net::detail
