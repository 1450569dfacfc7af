#include "api/http_guard.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace llmn::api {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower((unsigned char)c));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

struct HostPort {
    std::string name, port;  // lowercase; IPv6 without brackets; port "" when absent
};

// "name", "name:port", "[v6]", "[v6]:port", or a bare IPv6 address (no port).
std::optional<HostPort> split_host(std::string_view h) {
    const std::string s = lower(h);
    HostPort hp;
    if (!s.empty() && s.front() == '[') {
        const size_t close = s.find(']');
        if (close == std::string::npos) return std::nullopt;
        hp.name = s.substr(1, close - 1);
        const std::string rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            hp.port = rest.substr(1);
        }
    } else if (std::count(s.begin(), s.end(), ':') > 1) {
        hp.name = s;
    } else if (const size_t colon = s.find(':'); colon != std::string::npos) {
        hp.name = s.substr(0, colon);
        hp.port = s.substr(colon + 1);
    } else {
        hp.name = s;
    }
    if (hp.name.empty()) return std::nullopt;
    for (char c : hp.name)
        if (!std::isalnum((unsigned char)c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%') return std::nullopt;
    if (hp.port.size() > 5 || !std::all_of(hp.port.begin(), hp.port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return hp;
}

std::string bracketed(const std::string& name) { return name.find(':') != std::string::npos ? "[" + name + "]" : name; }

bool wildcard(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]"; }

std::string base64_decode(std::string_view in) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else return {};
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((acc >> bits) & 0xff));
        }
    }
    return out;
}

// The scheme's word, case-insensitively, then the rest ("Bearer abc" -> "abc").
std::optional<std::string_view> after_scheme(std::string_view header, std::string_view scheme) {
    header = trim(header);
    if (header.size() <= scheme.size() || lower(header.substr(0, scheme.size())) != scheme || header[scheme.size()] != ' ')
        return std::nullopt;
    return trim(header.substr(scheme.size() + 1));
}

std::string shown(std::string_view s) { return std::string(s.substr(0, 200)); }

}  // namespace

std::string normalize_origin(std::string_view origin) {
    const size_t sep = origin.find("://");
    if (sep == std::string_view::npos || sep == 0) return "";
    const std::string scheme = lower(origin.substr(0, sep));
    for (char c : scheme)
        if (!std::isalnum((unsigned char)c) && c != '+' && c != '-' && c != '.') return "";
    std::string_view rest = origin.substr(sep + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#@ ") != std::string_view::npos) return "";
    auto hp = split_host(rest);
    if (!hp) return "";
    if ((scheme == "http" && hp->port == "80") || (scheme == "https" && hp->port == "443")) hp->port.clear();
    return scheme + "://" + bracketed(hp->name) + (hp->port.empty() ? "" : ":" + hp->port);
}

bool is_json_content_type(std::string_view content_type) {
    return lower(trim(content_type.substr(0, content_type.find(';')))) == "application/json";
}

bool is_loopback_host(std::string_view host) {
    const std::string h = lower(host);
    return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
}

bool constant_time_equal(std::string_view guess, std::string_view secret) {
    volatile unsigned char diff = guess.size() == secret.size() ? 0 : 1;
    for (size_t i = 0; i < secret.size(); ++i) {
        const unsigned char g = i < guess.size() ? (unsigned char)guess[i] : 0;
        diff = diff | (g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

HttpGuard::HttpGuard(GuardConfig cfg) : cfg_(std::move(cfg)) {
    for (char c : cfg_.api_key)
        if (c <= ' ' || c > '~') throw std::invalid_argument("the API key must be printable ASCII without spaces");
    const std::string port = std::to_string(cfg_.port);
    std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
    std::string listen = lower(cfg_.listen_host);
    if (listen.size() > 2 && listen.front() == '[' && listen.back() == ']') listen = listen.substr(1, listen.size() - 2);
    if (!wildcard(listen) && std::find(names.begin(), names.end(), listen) == names.end()) names.insert(names.begin(), listen);
    for (const std::string& n : names) {
        hosts_.push_back({n, port});
        origins_.push_back(normalize_origin("http://" + bracketed(n) + ":" + port));
        allowed_list_ += (allowed_list_.empty() ? "" : ", ") + bracketed(n) + ":" + port;
    }
    for (const std::string& o : cfg_.allow_origins) {
        if (o == "*") {
            any_origin_ = true;
            continue;
        }
        const std::string n = normalize_origin(o);
        if (n.empty()) throw std::invalid_argument("--allow-origin wants scheme://host[:port] (or *), got '" + shown(o) + "'");
        origins_.push_back(n);
        const auto hp = split_host(n.substr(n.find("://") + 3));
        hosts_.push_back({hp->name, ""});  // a page served from that origin may proxy to us under its own name
        allowed_list_ += ", " + bracketed(hp->name);
    }
    for (const std::string& h : cfg_.allow_hosts) {
        const auto hp = split_host(h);
        if (!hp) throw std::invalid_argument("--allow-host wants a host name or host:port, got '" + shown(h) + "'");
        hosts_.push_back({hp->name, hp->port});
        allowed_list_ += ", " + bracketed(hp->name) + (hp->port.empty() ? "" : ":" + hp->port);
    }
    any_host_ = wildcard(listen) && has_key();
}

bool HttpGuard::host_allowed(std::string_view host) const {
    if (any_host_) return true;
    const auto hp = split_host(host);
    if (!hp) return false;
    const std::string port = hp->port.empty() ? "80" : hp->port;
    for (const HostName& h : hosts_)
        if (h.name == hp->name && (h.port.empty() || h.port == port)) return true;
    return false;
}

bool HttpGuard::origin_allowed(std::string_view origin, std::string_view host) const {
    if (origin.empty() || any_origin_) return true;
    const std::string o = normalize_origin(origin);
    if (o.empty()) return false;  // "null" (sandboxed frames, file://) and anything malformed
    if (std::find(origins_.begin(), origins_.end(), o) != origins_.end()) return true;
    // Same-origin: the page came from this server under the name the browser used (a Host already allowed).
    return !host.empty() && (o == normalize_origin("http://" + std::string(host)) || o == normalize_origin("https://" + std::string(host)));
}

bool HttpGuard::key_matches(std::string_view authorization) const {
    if (!has_key()) return true;
    if (const auto token = after_scheme(authorization, "bearer")) return constant_time_equal(*token, cfg_.api_key);
    if (const auto b64 = after_scheme(authorization, "basic")) {
        const std::string user_pass = base64_decode(*b64);
        const size_t colon = user_pass.find(':');
        return colon != std::string::npos && constant_time_equal(std::string_view(user_pass).substr(colon + 1), cfg_.api_key);
    }
    return false;
}

void HttpGuard::check(const GuardRequest& r) const {
    if (!host_allowed(r.host))
        throw ApiError(403,
                       "Host '" + shown(r.host) + "' is not allowed (a guard against DNS rebinding); this server answers to " +
                           allowed_list_ + ". Name it with --allow-host, or set --api-key when listening on every interface",
                       "invalid_request_error", "", "host_not_allowed");
    if (!origin_allowed(r.origin, r.host))
        throw ApiError(403,
                       "Origin '" + shown(r.origin) + "' may not use this API (a guard against cross-site requests); allow it with --allow-origin " +
                           shown(r.origin),
                       "invalid_request_error", "", "origin_not_allowed");
    if (r.method != "OPTIONS" && !key_matches(r.authorization))
        throw ApiError(401,
                       trim(r.authorization).empty()
                           ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth "
                             "(i.e. Authorization: Bearer YOUR_KEY)."
                           : "Incorrect API key provided.",
                       "invalid_request_error", "", "invalid_api_key");
    if (r.method == "POST" && !is_json_content_type(r.content_type))
        throw ApiError(415, "Content-Type must be application/json, got '" + shown(r.content_type) + "'", "invalid_request_error", "",
                       "unsupported_media_type");
}

std::string HttpGuard::exposure_warning(const std::string& addr) const {
    if (has_key() || is_loopback_host(cfg_.listen_host)) return "";
    std::string w = "llm-node api: WARNING: listening on " + addr + " without an API key: anyone who can reach " + addr +
                    " can use this API and, through it, your swarm; set --api-key (or LLM_NODE_API_KEY)";
    if (wildcard(lower(cfg_.listen_host)))
        w += ". Browsers are served only as " + allowed_list_ + " until --allow-host names this machine";
    return w;
}

}  // namespace llmn::api
