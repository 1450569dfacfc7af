#include "api/metrics.h"

#include <cstdio>

namespace llmn::api {

void Metrics::request(const std::string& endpoint, int status) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[{endpoint, status}];
}

void Metrics::generated(uint64_t prompt_tokens, uint64_t gen_tokens, double gen_seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    prompt_tokens_ += prompt_tokens;
    gen_tokens_ += gen_tokens;
    gen_seconds_ += gen_seconds;
    if (gen_seconds > 0 && gen_tokens > 0) last_tps_ = double(gen_tokens) / gen_seconds;
}

std::string Metrics::render(const std::string& model) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    char line[512];
    auto add = [&](const char* fmt, auto... v) {
        std::snprintf(line, sizeof line, fmt, v...);
        out += line;
    };
    out += "# HELP llmnode_requests_total HTTP requests by endpoint and status.\n# TYPE llmnode_requests_total counter\n";
    for (const auto& [k, n] : requests_)
        add("llmnode_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", k.endpoint.c_str(), k.status, (unsigned long long)n);
    uint64_t errors = 0;
    for (const auto& [k, n] : requests_)
        if (k.status >= 400) errors += n;
    out += "# HELP llmnode_errors_total Requests answered with an error status.\n# TYPE llmnode_errors_total counter\n";
    add("llmnode_errors_total %llu\n", (unsigned long long)errors);
    out += "# HELP llmnode_prompt_tokens_total Prompt tokens evaluated.\n# TYPE llmnode_prompt_tokens_total counter\n";
    add("llmnode_prompt_tokens_total{model=\"%s\"} %llu\n", model.c_str(), (unsigned long long)prompt_tokens_);
    out += "# HELP llmnode_generated_tokens_total Tokens generated.\n# TYPE llmnode_generated_tokens_total counter\n";
    add("llmnode_generated_tokens_total{model=\"%s\"} %llu\n", model.c_str(), (unsigned long long)gen_tokens_);
    out += "# HELP llmnode_generation_seconds_total Time spent generating.\n# TYPE llmnode_generation_seconds_total counter\n";
    add("llmnode_generation_seconds_total{model=\"%s\"} %.6f\n", model.c_str(), gen_seconds_);
    out += "# HELP llmnode_tokens_per_second Generation speed of the last request.\n# TYPE llmnode_tokens_per_second gauge\n";
    add("llmnode_tokens_per_second{model=\"%s\"} %.3f\n", model.c_str(), last_tps_);
    out += "# HELP llmnode_active_sessions Generations running now.\n# TYPE llmnode_active_sessions gauge\n";
    add("llmnode_active_sessions %d\n", active_.load());
    out += "# HELP llmnode_client_disconnects_total Streams whose client went away mid-generation.\n# TYPE llmnode_client_disconnects_total counter\n";
    add("llmnode_client_disconnects_total %llu\n", (unsigned long long)disconnects_.load());
    return out;
}

}  // namespace llmn::api
