#include "swarm/weights_join.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <thread>

#include "swarm/dht.h"

namespace llmn::swarm {

net::Key32 catalog_id() {
    static const net::Key32 id = [] {
        static const char label[] = "llm-node/v1 swarm catalog";
        net::Key32 k{};
        crypto_generichash(k.data(), k.size(), reinterpret_cast<const unsigned char*>(label), sizeof label - 1, nullptr, 0);
        return k;
    }();
    return id;
}

std::optional<net::Key32> parse_model_id(const std::string& s) {
    if (s.size() != 64) return std::nullopt;
    net::Key32 k{};
    for (size_t i = 0; i < 32; ++i) {
        auto nib = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        const int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        k[i] = uint8_t(hi * 16 + lo);
    }
    return k;
}

std::string torrent_peer(const net::ProbedNode& n) {
    if (n.info.torrent.size() != 52 || n.info.torrent_port == 0 || n.address.find('@') != std::string::npos) return "";
    const auto colon = n.address.rfind(':');
    if (colon == std::string::npos) return "";
    return n.address.substr(0, colon) + ":" + std::to_string(n.info.torrent_port);
}

std::string open_from_swarm(Dht& dht, Weights& weights, const net::Key32& model_id, std::optional<net::Key32> swarm_key,
                            std::chrono::seconds timeout, const WeightsProgress& progress) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    const std::string short_id = net::to_hex(model_id.data(), 8);
    std::string seen = "no node of model " + short_id + " found on the DHT";
    std::vector<std::string> tried;
    while (Clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        const auto addrs = dht.peers(model_id, std::min(left, std::chrono::milliseconds(5000)));
        if (addrs.empty()) continue;
        const auto probed = net::probe_nodes(addrs, std::chrono::milliseconds(3000), swarm_key);
        // Torrents named by the nodes of this model, with their seeders.
        std::map<std::vector<uint8_t>, std::vector<std::string>> by_torrent;
        for (const auto& n : probed) {
            const std::string peer = torrent_peer(n);
            if (n.info.model_id == model_id && !peer.empty()) by_torrent[n.info.torrent].push_back(peer);
        }
        seen = std::to_string(addrs.size()) + " nodes of model " + short_id + " on the DHT, " + std::to_string(probed.size()) +
               " answered, " + std::to_string(by_torrent.size()) + " torrents named";
        std::vector<std::pair<std::vector<uint8_t>, std::vector<std::string>>> order(by_torrent.begin(), by_torrent.end());
        std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
        for (const auto& [bytes, peers] : order) {
            const TorrentId tid = *TorrentId::from_bytes(bytes);
            if (std::find(tried.begin(), tried.end(), tid.hex()) != tried.end()) continue;
            const auto now = Clock::now();
            if (now >= deadline) break;
            try {
                return weights.open(model_id, tid, peers,
                                    std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(deadline - now)),
                                    progress);
            } catch (const FetchError& e) {
                std::fprintf(stderr, "[weights] torrent %s from %zu nodes: %s\n", tid.hex().substr(0, 16).c_str(), peers.size(), e.what());
                tried.push_back(tid.hex());
                seen += "; torrent " + tid.hex().substr(0, 16) + ": " + e.what();
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    throw FetchError("cannot fetch model " + short_id + " from the swarm: " + seen);
}

}  // namespace llmn::swarm
