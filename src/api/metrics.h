// Counters for /metrics (Prometheus text format), updated by request threads.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace llmn::api {

class Metrics {
public:
    void request(const std::string& endpoint, int status);
    void generated(uint64_t prompt_tokens, uint64_t gen_tokens, double gen_seconds);
    void session_opened() { ++active_; }
    void session_closed() { --active_; }
    void client_gone() { ++disconnects_; }
    int active() const { return active_.load(); }
    std::string render(const std::string& model) const;

private:
    mutable std::mutex mu_;
    struct Key {
        std::string endpoint;
        int status;
        bool operator<(const Key& o) const { return endpoint != o.endpoint ? endpoint < o.endpoint : status < o.status; }
    };
    std::map<Key, uint64_t> requests_;
    uint64_t prompt_tokens_ = 0, gen_tokens_ = 0;
    double gen_seconds_ = 0, last_tps_ = 0;
    std::atomic<int> active_{0};
    std::atomic<uint64_t> disconnects_{0};
};

}  // namespace llmn::api
