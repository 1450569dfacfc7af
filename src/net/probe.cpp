#include "net/probe.h"

#include <sodium.h>

#include <set>

#include "net/link.h"
#include "net/relay.h"

namespace llmn::net {

namespace {

uint64_t random_u64_for_probe() {
    uint64_t v = 0;
    while (v == 0) randombytes_buf(&v, sizeof v);
    return v;
}

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

namespace {

std::vector<uint8_t> node_info_transcript(NodeInfo info) {
    info.signature = {};
    static const std::string label = "llm-node/v1 node info";
    std::vector<uint8_t> t(label.begin(), label.end());
    const std::vector<uint8_t> body = encode(info);
    t.insert(t.end(), body.begin(), body.end());
    return t;
}

}  // namespace

void sign_node_info(NodeInfo& info, const Identity& id) {
    const std::vector<uint8_t> t = node_info_transcript(info);
    info.signature = id.sign(t.data(), t.size());
}

bool node_info_signed_by(const NodeInfo& info, const Key32& id) {
    const std::vector<uint8_t> t = node_info_transcript(info);
    return verify_signature(id, info.signature, t.data(), t.size());
}

ProbeReport probe_through(const std::string& directory, const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                          std::optional<Key32> swarm_key) {
    ensure_sodium();
    ProbeReport report;
    const Identity self = Identity::generate();  // used for this probe only
    asio::io_context io;
    std::string failure = "timed out";
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        const auto t0 = std::chrono::steady_clock::now();
        LinkOptions opts;
        opts.handshake_timeout = timeout;
        opts.swarm_key = swarm_key;
        try {
            auto link = co_await Link::connect(directory, self, opts);
            Message first = co_await link->read(timeout);
            const auto* ni = std::get_if<NodeInfo>(&first);
            if (!ni) throw NetError(Errc::bad_message, "answered " + to_string(first) + " instead of NODE_INFO");
            ProbedNode d;
            d.address = directory;
            d.identity = link->peer_identity();
            d.info = *ni;
            d.rtt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
            report.nodes.push_back(d);
            if (addresses.empty()) co_return;
            std::string list;
            for (const std::string& a : addresses) list += (list.empty() ? "" : ",") + a;
            const uint64_t rid = random_u64_for_probe();
            const Message req = ProbeRequest{rid, list};
            co_await link->write(req);
            std::set<std::string> asked(addresses.begin(), addresses.end());
            for (;;) {
                Message m = co_await link->read(timeout * 4);
                if (const auto* e = std::get_if<Error>(&m)) throw NetError(Errc(e->code), "directory " + directory + ": " + e->text);
                const auto* a = std::get_if<ProbeAnswer>(&m);
                if (!a || a->request_id != rid) continue;
                if (a->address.empty()) break;
                ProbedNode p;
                p.address = a->address;
                p.identity = a->identity;
                p.rtt_seconds = a->rtt_us / 1e6;
                try {
                    Message inner = decode(a->node_info.data(), a->node_info.size());
                    const auto* info = std::get_if<NodeInfo>(&inner);
                    if (!info || !node_info_signed_by(*info, a->identity)) throw NetError(Errc::bad_message, "unsigned");
                    p.info = *info;
                } catch (const NetError&) {
                    report.failed.push_back({a->address, "answer not signed by the node (via " + directory + ")"});
                    continue;
                }
                asked.erase(a->address);
                report.nodes.push_back(std::move(p));
            }
            for (const std::string& a : asked) report.failed.push_back({a, "no answer via " + directory});
            link->close(Errc::closed);
        } catch (const NetError& e) {
            failure = short_reason(e);
        }
    }, [](std::exception_ptr) {});
    io.run_for(timeout * 6);
    if (report.nodes.empty()) report.failed.push_back({directory, failure});
    return report;
}

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
