// Relaying: the dialer's and the relayed node's halves of the protocol in
// net/relay.h, and the relay's splices with their caps.
#include "net/relay.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <cstdio>
#include <cstdlib>

#include "net/link_detail.h"
#include "net/punch.h"

// Messages written in a coroutine are named first: g++ 12 may destroy a braced
// temporary inside a co_await expression twice.
namespace llmn::net {

using asio::ip::tcp;
using detail::use_tuple;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kNodeAnswer = std::chrono::seconds(5);        // relay: the node opens its link for a dial
constexpr uint32_t kMaxPunchMs = 5000;                       // relay: longest punching window it passes on
constexpr auto kChoiceSlack = std::chrono::milliseconds(500);  // node: punches this much longer than the dialer

bool relay_log() { return std::getenv("LLM_NODE_RELAY_LOG") != nullptr; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads the relay's answer: RELAY_READY, or its ERROR as a NetError.
asio::awaitable<RelayReady> await_ready(Link& link, const std::string& relay, std::chrono::milliseconds timeout) {
    Message m = co_await link.read(timeout);
    if (std::holds_alternative<NodeInfo>(m)) m = co_await link.read(timeout);  // a node's first frame on every link
    if (const auto* e = std::get_if<Error>(&m)) throw NetError(Errc(e->code), "relay " + relay + ": " + e->text);
    const auto* r = std::get_if<RelayReady>(&m);
    if (!r) throw NetError(Errc::bad_message, "relay " + relay + ": expected RELAY_READY, got " + to_string(m));
    co_return *r;
}

asio::awaitable<std::optional<tcp::socket>> try_punch(const RelayReady& ready, const tcp::endpoint& local, std::chrono::milliseconds window) {
    if (ready.punch_ms == 0 || window.count() <= 0) co_return std::nullopt;
    const auto peer = detail::parse_endpoint(ready.peer_observed);
    if (!peer || peer->protocol() != local.protocol()) co_return std::nullopt;
    if (ready.delay_ms > 0) co_await detail::sleep_for(std::chrono::milliseconds(std::min<uint32_t>(ready.delay_ms, 1000)));
    co_return co_await detail::punch(local, *peer, window);
}

}  // namespace

std::optional<RelayedAddress> parse_relayed(const std::string& address) {
    const auto at = address.find('@');
    if (at != 64 || address.size() < 68) return std::nullopt;
    RelayedAddress r;
    for (size_t i = 0; i < 32; ++i) {
        const int hi = hex_value(address[2 * i]), lo = hex_value(address[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        r.node[i] = uint8_t(hi << 4 | lo);
    }
    r.relay = address.substr(at + 1);
    if (r.relay.find(':') == std::string::npos || r.relay.find('@') != std::string::npos) return std::nullopt;
    return r;
}

std::string relayed_address(const Key32& node, const std::string& relay) { return to_hex(node.data(), node.size()) + "@" + relay; }

asio::awaitable<std::shared_ptr<Link>> connect_relayed(const RelayedAddress& via, const Identity& self, LinkOptions opts) {
    const std::string name = relayed_address(via.node, via.relay);
    tcp::socket s = co_await detail::connect_reusable(via.relay, std::nullopt, opts.handshake_timeout);
    const tcp::endpoint local = s.local_endpoint();
    auto relay = co_await Link::dial_over(std::move(s), via.relay, self, opts, std::nullopt);
    const Message msg1 = RelayDial{via.node, uint32_t(std::min<int64_t>(opts.punch_window.count(), kMaxPunchMs))};
    co_await relay->write(msg1);
    const RelayReady ready = co_await await_ready(*relay, via.relay, opts.handshake_timeout);
    tcp::socket spliced = relay->release();
    std::optional<tcp::socket> direct = co_await try_punch(ready, local, opts.punch_window);
    // The choice goes through the splice, so both ends run the handshake on the same connection.
    const uint8_t choice = direct ? 'D' : 'R';
    auto [ec, n] = co_await asio::async_write(spliced, asio::buffer(&choice, 1), use_tuple);
    if (ec) throw NetError(Errc::io_error, "peer " + name + ": relay connection lost: " + ec.message());
    if (relay_log())
        std::fprintf(stderr, "[relay] link to %s..: %s\n", name.substr(0, 12).c_str(),
                     direct ? "direct (hole punched)" : ready.punch_ms ? "through the relay (punching failed)" : "through the relay");
    if (direct) {
        spliced.close(ec);
        co_return co_await Link::dial_over(std::move(*direct), name, self, opts, via.node);
    }
    co_return co_await Link::dial_over(std::move(spliced), name, self, opts, via.node);
}

asio::awaitable<tcp::socket> answer_relayed(const std::string& relay_addr, const Key32& relay_id, uint64_t token, const Identity& self,
                                            LinkOptions opts) {
    tcp::socket s = co_await detail::connect_reusable(relay_addr, std::nullopt, opts.handshake_timeout);
    const tcp::endpoint local = s.local_endpoint();
    auto relay = co_await Link::dial_over(std::move(s), relay_addr, self, opts, relay_id);
    const Message msg2 = RelayAccept{token};
    co_await relay->write(msg2);
    const RelayReady ready = co_await await_ready(*relay, relay_addr, opts.handshake_timeout);
    tcp::socket spliced = relay->release();
    const auto window = std::chrono::milliseconds(ready.punch_ms) + kChoiceSlack;
    std::optional<tcp::socket> direct = co_await try_punch(ready, local, ready.punch_ms ? window : std::chrono::milliseconds(0));
    uint8_t choice = 0;
    using namespace asio::experimental::awaitable_operators;
    auto r = co_await (asio::async_read(spliced, asio::buffer(&choice, 1), use_tuple) || detail::sleep_for(opts.handshake_timeout + window));
    if (r.index() == 1) throw NetError(Errc::timeout, "relay " + relay_addr + ": the dialer sent no choice of connection");
    if (auto [ec, n] = std::get<0>(r); ec) throw NetError(Errc::io_error, "relay " + relay_addr + ": " + ec.message());
    if (choice == 'D') {
        if (!direct) throw NetError(Errc::handshake_failed, "relay " + relay_addr + ": the dialer punched through, this side did not");
        asio::error_code ec;
        spliced.close(ec);
        co_return std::move(*direct);
    }
    if (choice != 'R') throw NetError(Errc::bad_message, "relay " + relay_addr + ": unknown connection choice " + std::to_string(choice));
    co_return spliced;
}

// ---- the relay ----------------------------------------------------------------

struct RelayService::Bucket {
    double tokens = 0, rate = 0;
    Clock::time_point last = Clock::now();
    // Takes n bytes; how long to wait until they were within the rate.
    std::chrono::milliseconds take(size_t n) {
        const auto now = Clock::now();
        tokens = std::min(rate, tokens + rate * std::chrono::duration<double>(now - last).count());
        last = now;
        tokens -= double(n);
        return tokens >= 0 ? std::chrono::milliseconds(0) : std::chrono::milliseconds(int64_t(-tokens * 1000 / rate) + 1);
    }
};

struct RelayService::Relayed {
    Key32 id{};
    std::weak_ptr<Link> link;  // the node's kept link
    int pending = 0;
    NodeUse use;
    std::shared_ptr<Bucket> to_node = std::make_shared<Bucket>(), from_node = std::make_shared<Bucket>();
};

struct RelayService::Pending {
    std::weak_ptr<Link> dialer;
    std::shared_ptr<Relayed> node;
    asio::steady_timer wake;
    uint32_t punch_ms = 0;
    bool claimed = false, done = false;
    explicit Pending(asio::any_io_executor ex) : wake(ex) {}
};

RelayService::RelayService(asio::any_io_executor ex, RelayLimits limits) : ex_(std::move(ex)), limits_(limits) {}

void RelayService::on_register(const std::shared_ptr<Link>& link) {
    const Key32 id = link->peer_identity();
    auto it = nodes_.find(id);
    if (it == nodes_.end() && int(nodes_.size()) >= limits_.max_nodes) {
        const std::string why = limits_.max_nodes == 0 ? "this node does not relay"
                                                       : "relay full: " + std::to_string(nodes_.size()) + " nodes relayed already";
        return Link::send_detached(link, RelayRegistered{0, link->peer_address(), why, 0, 0});
    }
    auto node = it == nodes_.end() ? std::make_shared<Relayed>() : it->second;
    node->id = id;
    node->link = link;
    node->to_node->rate = node->from_node->rate = double(limits_.max_bytes_per_s);
    nodes_[id] = node;
    Link::send_detached(link, RelayRegistered{1, link->peer_address(), "", uint32_t(limits_.max_links_per_node), limits_.max_bytes_per_s});
}

void RelayService::on_closed(const Link* link) {
    for (auto it = nodes_.begin(); it != nodes_.end();) {
        auto kept = it->second->link.lock();
        it = (!kept || kept.get() == link) ? nodes_.erase(it) : std::next(it);
    }
}

asio::awaitable<bool> RelayService::on_dial(std::shared_ptr<Link> link, RelayDial dial) {
    auto it = nodes_.find(dial.target);
    auto kept = it == nodes_.end() ? nullptr : it->second->link.lock();
    if (!kept || !kept->is_open()) {
        const Message msg3 = Error{0, uint16_t(Errc::no_such_node), "node " + to_hex(dial.target.data(), 8) + ".. is not relayed here"};
        co_await link->write(msg3);
        co_return false;
    }
    auto node = it->second;
    if (node->use.links + node->pending >= limits_.max_links_per_node) {
        ++node->use.refused;
        const Message msg4 = Error{0, uint16_t(Errc::overloaded), "the relayed node's " + std::to_string(limits_.max_links_per_node) +
                                                                       " links through this relay are in use"};
        co_await link->write(msg4);
        co_return false;
    }
    uint64_t token = 0;
    randombytes_buf(&token, sizeof token);
    auto p = std::make_shared<Pending>(ex_);
    p->dialer = link;
    p->node = node;
    p->punch_ms = std::min(dial.punch_ms, kMaxPunchMs);
    pending_[token] = p;
    ++node->pending;
    Link::send_detached(kept, RelayIncoming{token});
    // on_accept completes the hand-off and wakes us; past the deadline we give up
    // unless it has already claimed this dial.
    for (auto deadline = Clock::now() + kNodeAnswer;;) {
        p->wake.expires_at(deadline);
        co_await p->wake.async_wait(use_tuple);
        if (p->done) co_return true;
        if (!p->claimed && Clock::now() >= deadline) break;
        if (p->claimed) deadline = Clock::now() + kNodeAnswer;
    }
    pending_.erase(token);
    --node->pending;
    const Message msg5 = Error{0, uint16_t(Errc::timeout), "the relayed node did not answer within 5 s"};
    co_await link->write(msg5);
    co_return false;
}

asio::awaitable<bool> RelayService::on_accept(std::shared_ptr<Link> link, RelayAccept accept) {
    auto it = pending_.find(accept.token);
    if (it == pending_.end() || it->second->node->id != link->peer_identity()) {
        const Message msg6 = Error{0, uint16_t(Errc::no_such_node), "no dial waits for this token from this node"};
        co_await link->write(msg6);
        co_return false;
    }
    auto p = it->second;
    pending_.erase(it);
    p->claimed = true;
    --p->node->pending;
    auto dialer = p->dialer.lock();
    bool spliced = false;
    if (dialer && dialer->is_open()) {
        // Each end starts punching when the other end has its RELAY_READY too:
        // the nearer one waits half the difference of their round trips.
        const double rd = dialer->handshake_seconds(), rn = link->handshake_seconds();
        const auto half_ms = [](double a, double b) { return uint32_t(a > b ? (a - b) * 500 : 0); };
        try {
            const Message msg7 = RelayReady{link->peer_address(), half_ms(rn, rd), p->punch_ms};
            co_await dialer->write(msg7);
            const Message msg8 = RelayReady{dialer->peer_address(), half_ms(rd, rn), p->punch_ms};
            co_await link->write(msg8);
            tcp::socket a = dialer->release(), b = link->release();
            ++p->node->use.links;
            asio::co_spawn(ex_, splice(std::move(a), std::move(b), p->node), asio::detached);
            spliced = true;
        } catch (const std::exception&) {
        }
    }
    if (!spliced) {
        if (dialer) dialer->close(Errc::closed);
        link->close(Errc::closed, "the dialer went away");
    }
    p->done = true;
    p->wake.cancel();
    co_return true;
}

asio::awaitable<void> RelayService::pump(tcp::socket& from, tcp::socket& to, std::shared_ptr<Relayed> node, std::shared_ptr<Bucket> bucket) {
    using namespace asio::experimental::awaitable_operators;
    std::vector<uint8_t> buf(16384);
    for (;;) {
        auto r = co_await (from.async_read_some(asio::buffer(buf), use_tuple) ||
                           detail::sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(limits_.idle)));
        if (r.index() == 1) co_return;
        auto [ec, n] = std::get<0>(r);
        if (ec) co_return;
        if (const auto wait = bucket->take(n); wait.count() > 0) co_await detail::sleep_for(wait);
        auto [ec2, m] = co_await asio::async_write(to, asio::buffer(buf.data(), n), use_tuple);
        if (ec2) co_return;
        node->use.bytes += n;
    }
}

asio::awaitable<void> RelayService::splice(tcp::socket a, tcp::socket b, std::shared_ptr<Relayed> node) {
    using namespace asio::experimental::awaitable_operators;
    // The first direction to end (a close, an error, the idle limit) ends both.
    co_await (pump(a, b, node, node->to_node) || pump(b, a, node, node->from_node));
    asio::error_code ec;
    a.close(ec);
    b.close(ec);
    --node->use.links;
}

std::vector<uint8_t> RelayService::relayed_ids() const {
    std::vector<uint8_t> out;
    for (const auto& [id, node] : nodes_)
        if (auto l = node->link.lock(); l && l->is_open()) out.insert(out.end(), id.begin(), id.end());
    return out;
}

uint16_t RelayService::free_slots() const {
    return uint16_t(std::max<int>(0, limits_.max_nodes - int(nodes_.size())));
}

std::map<Key32, RelayService::NodeUse> RelayService::usage() const {
    std::map<Key32, NodeUse> out;
    for (const auto& [id, node] : nodes_) out[id] = node->use;
    return out;
}

}  // namespace llmn::net
