#include "net/probe.h"

#include <set>

#include "net/link.h"
#include "net/relay.h"

namespace llmn::net {

namespace {

std::string short_reason(const NetError& e) {
    const std::string what = e.what();
    if (e.code() == Errc::timeout) return "timed out";
    if (what.find("refused") != std::string::npos) return "refused";
    if (what.find("unreachable") != std::string::npos) return "no route";
    return what;
}

// One round: every address at once, within `timeout` (twice that for the whole round).
void probe_round(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout, std::optional<Key32> swarm_key,
                 ProbeReport& report) {
    const Identity self = Identity::generate();
    std::vector<ProbedNode> out(addresses.size());
    std::vector<std::string> error(addresses.size(), "timed out");
    std::vector<bool> ok(addresses.size(), false);
    asio::io_context io;  // last: pending probes are destroyed before what they write to
    for (size_t i = 0; i < addresses.size(); ++i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            const auto t0 = std::chrono::steady_clock::now();
            LinkOptions opts;
            opts.handshake_timeout = timeout;
            opts.swarm_key = swarm_key;
            try {
                auto link = co_await Link::connect(addresses[i], self, opts);
                Message m = co_await link->read(timeout);
                if (const auto* ni = std::get_if<NodeInfo>(&m)) {
                    out[i].address = addresses[i];
                    out[i].identity = link->peer_identity();
                    out[i].info = *ni;
                    // The handshake and NODE_INFO take about three one-way trips each way.
                    out[i].rtt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
                    ok[i] = true;
                } else {
                    error[i] = "answered " + to_string(m) + " instead of NODE_INFO";
                }
                link->close(Errc::closed);
            } catch (const NetError& e) {
                error[i] = short_reason(e);
            }
        }, [](std::exception_ptr) {});
    }
    io.run_for(timeout * 2);
    for (size_t i = 0; i < out.size(); ++i) {
        if (ok[i]) report.nodes.push_back(std::move(out[i]));
        else report.failed.push_back({addresses[i], error[i]});
    }
}

}  // namespace

ProbeReport probe_swarm(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout, std::optional<Key32> swarm_key) {
    ensure_sodium();
    ProbeReport report;
    probe_round(addresses, timeout, swarm_key, report);
    // Nodes behind NAT are listed by the relays that serve them: reach them through it.
    std::set<Key32> known;
    for (const auto& p : report.nodes) known.insert(p.identity);
    std::vector<std::string> relayed;
    for (const auto& p : report.nodes) {
        if (parse_relayed(p.address)) continue;
        for (size_t off = 0; off + 32 <= p.info.relayed.size(); off += 32) {
            Key32 id;
            std::copy(p.info.relayed.begin() + long(off), p.info.relayed.begin() + long(off + 32), id.begin());
            if (known.insert(id).second) relayed.push_back(relayed_address(id, p.address));
        }
    }
    // Through a relay a link takes about three handshakes: give it the time.
    if (!relayed.empty()) probe_round(relayed, timeout * 2, swarm_key, report);
    return report;
}

std::vector<ProbedNode> probe_nodes(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                                    std::optional<Key32> swarm_key) {
    return probe_swarm(addresses, timeout, swarm_key).nodes;
}

std::string ProbeReport::summary(size_t given) const {
    std::string s = std::to_string(given) + (given == 1 ? " node" : " nodes") + " found";
    if (nodes.empty()) s += given ? ", none reachable" : "";
    else s += ", " + std::to_string(nodes.size()) + " reachable";
    const size_t shown = std::min<size_t>(failed.size(), 6);
    for (size_t i = 0; i < shown; ++i) s += (i ? ", " : ": ") + failed[i].address + " " + failed[i].reason;
    if (failed.size() > shown) s += ", " + std::to_string(failed.size() - shown) + " more unreachable";
    return s;
}

}  // namespace llmn::net
