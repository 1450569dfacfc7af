#include "net/probe.h"

#include "net/link.h"

namespace llmn::net {

std::vector<ProbedNode> probe_nodes(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                                    std::optional<Key32> swarm_key) {
    ensure_sodium();
    const Identity self = Identity::generate();
    std::vector<ProbedNode> out(addresses.size());
    std::vector<bool> ok(addresses.size(), false);
    asio::io_context io;  // last: pending probes are destroyed before what they write to
    for (size_t i = 0; i < addresses.size(); ++i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            const auto t0 = std::chrono::steady_clock::now();
            LinkOptions opts;
            opts.handshake_timeout = timeout;
            opts.swarm_key = swarm_key;
            auto link = co_await Link::connect(addresses[i], self, opts);
            Message m = co_await link->read(timeout);
            if (const auto* ni = std::get_if<NodeInfo>(&m)) {
                out[i].address = addresses[i];
                out[i].identity = link->peer_identity();
                out[i].info = *ni;
                // The handshake and NODE_INFO take about three one-way trips each way.
                out[i].rtt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
                ok[i] = true;
            }
            link->close(Errc::closed);
        }, [](std::exception_ptr) {});
    }
    io.run_for(timeout * 2);
    std::vector<ProbedNode> found;
    for (size_t i = 0; i < out.size(); ++i)
        if (ok[i]) found.push_back(out[i]);
    return found;
}

}  // namespace llmn::net
