#include "node/node_reach.h"

#include <future>

// Messages written in a coroutine are named first: g++ 12 may destroy a braced
// temporary inside a co_await expression twice.
namespace llmn::node {

NodeReach::NodeReach(asio::io_context& io_, const net::Identity& self, const net::LinkOptions& opts, const NodeConfig& cfg,
                     std::function<void(asio::ip::tcp::socket)> serve)
    : io(io_),
      relay(io_.get_executor(), net::RelayLimits{cfg.relay_slots, cfg.relay_links_per_node, cfg.relay_bytes_per_s}),
      dial_back(self, opts),
      relay_client(io_.get_executor(), self, opts, std::move(serve)) {}

asio::awaitable<std::optional<bool>> NodeReach::dispatch(const std::shared_ptr<net::Link>& link, net::Message& m) {
    if (auto* db = std::get_if<net::DialBack>(&m)) {
        dial_back.on_request(link, *db);
    } else if (std::holds_alternative<net::RelayRegister>(m)) {
        if (reach == uint8_t(net::Reach::relayed)) {
            const net::Message no = net::RelayRegistered{0, link->peer_address(), "this node is relayed itself", 0, 0};
            co_await link->write(no);
        } else {
            relay.on_register(link);
        }
    } else if (auto* d = std::get_if<net::RelayDial>(&m)) {
        co_return co_await relay.on_dial(link, *d);
    } else if (auto* a = std::get_if<net::RelayAccept>(&m)) {
        co_return co_await relay.on_accept(link, *a);
    } else {
        co_return std::nullopt;
    }
    co_return false;
}

void NodeReach::fill(net::NodeInfo& info) const {
    info.reach = reach;
    info.relay_free = reach == uint8_t(net::Reach::relayed) ? 0 : relay.free_slots();
    info.relayed = relay.relayed_ids();
    info.relay_links = uint16_t(std::min(relay.limits().max_links_per_node, 65535));
    info.relay_bytes_per_s = relay.limits().max_bytes_per_s;
}

namespace {
// Runs `fn` on the io thread and waits (bounded) for its answer.
template <class T, class Fn>
T on_io(asio::io_context& io, Fn fn) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
    std::future<T> f = task->get_future();
    asio::post(io, [task] { (*task)(); });
    if (f.wait_for(std::chrono::seconds(1)) != std::future_status::ready) return T{};
    return f.get();
}
}  // namespace

void Node::set_reach(uint8_t reach) {
    asio::post(reach_->io, [r = reach_.get(), reach] { r->reach = reach; });
}

void Node::use_relay(const std::string& relay) {
    asio::post(reach_->io, [r = reach_.get(), relay] { r->relay_client.start(relay); });
}

Node::RelayState Node::relay_state() const {
    return on_io<RelayState>(reach_->io, [r = reach_.get()] {
        const auto st = r->relay_client.status();
        return RelayState{st.state == net::RelayClient::State::registered, st.relay, st.observed, st.text, st.max_links, st.max_bytes_per_s};
    });
}

std::vector<Node::RelayedUse> Node::relayed_nodes() const {
    return on_io<std::vector<RelayedUse>>(reach_->io, [r = reach_.get()] {
        std::vector<RelayedUse> out;
        for (const auto& [id, use] : r->relay.usage()) out.push_back({net::to_hex(id.data(), id.size()), use.links, use.bytes, use.refused});
        return out;
    });
}

}  // namespace llmn::node
