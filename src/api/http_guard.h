// Who may drive the local API. Every request passes these checks before it is
// served, against three attackers: a web page on another site that posts to
// the API from the operator's browser (CSRF), a page whose name was re-pointed
// at this machine (DNS rebinding: the browser then thinks the API is that
// page's own origin), and, when an API key is set, anyone without it.
// Pure: no I/O and no HTTP library, so each rule is unit-tested.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "api/openai_request.h"

namespace llmn::api {

struct GuardConfig {
    std::string listen_host;                 // as given to --listen: "127.0.0.1", "0.0.0.0", "::", "lan-box", ...
    int port = 0;                            // the bound port
    std::vector<std::string> allow_origins;  // "scheme://host[:port]", or "*" for any origin
    std::vector<std::string> allow_hosts;    // "name" (any port) or "name:port"
    std::string api_key;                     // empty: no key
};

// The header values of a request the guard reads ("" when absent).
struct GuardRequest {
    std::string method, path, host, origin, authorization, content_type;
};

class HttpGuard {
public:
    // Throws std::invalid_argument naming a malformed --allow-origin or --allow-host entry.
    explicit HttpGuard(GuardConfig cfg);

    // Throws ApiError when the request must be refused, checking in this order:
    //   Host not allowed (DNS rebinding)            403 host_not_allowed
    //   Origin present and not allowed (CSRF)       403 origin_not_allowed
    //   API key missing or wrong (not for OPTIONS)  401 invalid_api_key
    //   POST whose Content-Type is not JSON         415 unsupported_media_type
    void check(const GuardRequest& r) const;

    // Host: the listen address, localhost / 127.0.0.1 / [::1], on the bound
    // port; --allow-host names and the hosts of --allow-origin entries, on any
    // port; anything when listening on every interface (0.0.0.0, ::) with a key.
    bool host_allowed(std::string_view host) const;
    // Origin: absent; "*" given; an --allow-origin entry; the request's own
    // origin (http(s):// + its Host, once the Host passed); or the loopback
    // names and the listen address on the bound port (http).
    bool origin_allowed(std::string_view origin, std::string_view host) const;
    // True without a key; else "Bearer KEY", or "Basic base64(any-user:KEY)" (the
    // browser's own prompt, so the status page works), compared in constant time.
    bool key_matches(std::string_view authorization) const;
    bool has_key() const { return !cfg_.api_key.empty(); }

    // The stderr warning for a listener beyond loopback without a key; "" otherwise.
    std::string exposure_warning(const std::string& addr) const;

private:
    GuardConfig cfg_;
    struct HostName {
        std::string name, port;  // lowercase, IPv6 without brackets; port "" matches any
    };
    std::vector<std::string> origins_;  // normalized
    std::vector<HostName> hosts_;
    std::string allowed_list_;          // for error messages: "127.0.0.1:8080, localhost:8080, ..."
    bool any_origin_ = false, any_host_ = false;
};

// "scheme://host[:port]" lowercased, without a trailing '/' or a default port
// (http 80, https 443); "" when it is not of that shape (a path, no scheme).
std::string normalize_origin(std::string_view origin);
// "application/json", any case, with parameters such as "; charset=utf-8".
bool is_json_content_type(std::string_view content_type);
// localhost, 127.0.0.0/8, ::1 (brackets allowed).
bool is_loopback_host(std::string_view host);
// Equal, in time that depends only on the length of `secret`.
bool constant_time_equal(std::string_view guess, std::string_view secret);

}  // namespace llmn::api
