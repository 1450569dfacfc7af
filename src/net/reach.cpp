#include "net/reach.h"

#include "net/link_detail.h"
#include "net/relay.h"

// Messages written in a coroutine are named first: g++ 12 may destroy a braced
// temporary inside a co_await expression twice.
namespace llmn::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kDialBacksPerIpPerMinute = 6;
constexpr int kDialBacksAtOnce = 8;
constexpr auto kDialBackTimeout = std::chrono::seconds(3);
constexpr std::chrono::milliseconds kRegisterTimeout{5000};
constexpr std::chrono::milliseconds kKeepAlive{20000};

std::string host_of(const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    return colon == std::string::npos ? host_port : host_port.substr(0, colon);
}

}  // namespace

DialBackResult ask_dial_back(const std::string& helper, uint16_t port, const Key32& identity, LinkOptions opts,
                             std::chrono::milliseconds timeout) {
    ensure_sodium();
    asio::io_context io;
    DialBackResult result;
    std::exception_ptr failure;
    bool answered = false;
    opts.handshake_timeout = std::min(opts.handshake_timeout, timeout);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        const Identity asker = Identity::generate();  // the helper checks `identity` on the dial-back, not this link's
        auto link = co_await Link::connect(helper, asker, opts);
        const Message msg1 = DialBack{port, identity};
        co_await link->write(msg1);
        for (;;) {
            Message m = co_await link->read(timeout);
            if (const auto* r = std::get_if<DialBackResult>(&m)) {
                result = *r;
                answered = true;
                break;
            }
            if (const auto* e = std::get_if<Error>(&m)) throw NetError(Errc(e->code), "peer " + helper + ": " + e->text);
        }
        link->close(Errc::closed);
    }, [&](std::exception_ptr e) { failure = e; });
    io.run_for(timeout + opts.handshake_timeout + std::chrono::seconds(1));
    if (failure) std::rethrow_exception(failure);
    if (!answered) throw NetError(Errc::timeout, "peer " + helper + ": no dial-back answer in time");
    return result;
}

void DialBackService::on_request(const std::shared_ptr<Link>& link, const DialBack& req) {
    const std::string observed = link->peer_address();
    const std::string ip = host_of(observed);
    auto& times = recent_[ip];
    const auto now = Clock::now();
    while (!times.empty() && now - times.front() > std::chrono::minutes(1)) times.pop_front();
    if (recent_.size() > 4096) recent_.clear();  // bounded memory under a flood of source addresses
    if (int(times.size()) >= kDialBacksPerIpPerMinute || running_ >= kDialBacksAtOnce || req.port == 0)
        return Link::send_detached(link, DialBackResult{0, observed, req.port == 0 ? "port 0" : "dial-back rate limit reached: try again in a minute"});
    times.push_back(now);
    ++running_;
    LinkOptions opts = opts_;
    opts.handshake_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(kDialBackTimeout);
    const std::string target = ip + ":" + std::to_string(req.port);
    asio::co_spawn(link->executor(), [this, link, target, observed, opts, id = req.identity]() -> asio::awaitable<void> {
        DialBackResult r{0, observed, ""};
        try {
            auto back = co_await Link::connect(target, self_, opts, id);
            back->close(Errc::closed);
            r.reachable = 1;
        } catch (const std::exception& e) {
            r.text = e.what();
        }
        --running_;
        if (link->is_open()) co_await link->write(r);
    }, [](std::exception_ptr) {});
}

void RelayClient::start(const std::string& relay) {
    stop();
    status_ = Status{State::connecting, relay, "", "", 0, 0};
    asio::co_spawn(ex_, run(relay, ++generation_), [](std::exception_ptr) {});
}

void RelayClient::stop() {
    ++generation_;
    if (link_) link_->close(Errc::closed);
    link_.reset();
    status_.state = State::idle;
}

asio::awaitable<void> RelayClient::run(std::string relay, uint64_t generation) {
    std::shared_ptr<Link> link;
    try {
        link = co_await Link::connect(relay, self_, opts_);
        if (generation != generation_) co_return link->close(Errc::closed);
        link_ = link;
        const Message msg2 = RelayRegister{};
        co_await link->write(msg2);
        Message m = co_await link->read(kRegisterTimeout);
        if (std::holds_alternative<NodeInfo>(m)) m = co_await link->read(kRegisterTimeout);  // a node's first frame
        const auto* reg = std::get_if<RelayRegistered>(&m);
        if (!reg) throw NetError(Errc::bad_message, "relay " + relay + " answered " + to_string(m));
        if (!reg->ok) throw NetError(Errc::overloaded, "relay " + relay + " refused: " + reg->text);
        status_ = Status{State::registered, relay, reg->observed, "", reg->max_links, reg->max_bytes_per_s};
        const Key32 relay_id = link->peer_identity();
        // Pings keep the home router's mapping of this link alive; a relay that
        // answers nothing for three of them is gone.
        asio::co_spawn(ex_, [link, generation, this]() -> asio::awaitable<void> {
            for (uint64_t n = 1; link->is_open() && generation == generation_; ++n) {
                co_await detail::sleep_for(kKeepAlive);
                const Message msg3 = Ping{n};
                if (link->is_open()) co_await link->write(msg3);
            }
        }, [](std::exception_ptr) {});
        for (;;) {
            Message in = co_await link->read(3 * kKeepAlive);
            if (generation != generation_) break;
            if (const auto* inc = std::get_if<RelayIncoming>(&in)) {
                asio::co_spawn(ex_, [this, relay, relay_id, token = inc->token]() -> asio::awaitable<void> {
                    tcp::socket s = co_await answer_relayed(relay, relay_id, token, self_, opts_);
                    serve_(std::move(s));
                }, [](std::exception_ptr) {});
            }
        }
    } catch (const std::exception& e) {
        if (generation == generation_) status_ = Status{State::failed, relay, "", e.what(), 0, 0};
    }
    if (link) link->close(Errc::closed);
    if (generation == generation_ && status_.state == State::registered) status_ = Status{State::failed, relay, "", "link to the relay lost", 0, 0};
}

}  // namespace llmn::net
