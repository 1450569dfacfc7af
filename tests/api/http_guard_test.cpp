// HttpGuard's rules one by one, without a server: which Host names, Origins,
// keys and Content-Types pass, for a loopback listener, one on every
// interface with and without a key, and with --allow-origin / --allow-host.
#include <gtest/gtest.h>

#include "api/http_guard.h"

namespace llmn::api {
namespace {

HttpGuard loopback(std::vector<std::string> origins = {}, std::vector<std::string> hosts = {}, std::string key = "") {
    return HttpGuard(GuardConfig{"127.0.0.1", 8080, std::move(origins), std::move(hosts), std::move(key)});
}

// The error code check() throws, or "" when the request passes.
std::string refusal(const HttpGuard& g, GuardRequest r) {
    try {
        g.check(r);
        return "";
    } catch (const ApiError& e) {
        return std::to_string(e.status) + " " + e.code;
    }
}

TEST(ApiGuard, HostMustNameThisServer) {
    const HttpGuard g = loopback();
    for (const char* ok : {"127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"}) EXPECT_TRUE(g.host_allowed(ok)) << ok;
    for (const char* bad : {"evil.example:8080", "evil.example", "127.0.0.1:8081", "localhost", "", "[::1", "127.0.0.1:80:80",
                            "127.0.0.1:8080/x", "localhost:8080 "})
        EXPECT_FALSE(g.host_allowed(bad)) << bad;
    const HttpGuard named(GuardConfig{"lan-box.local", 9000, {}, {}, ""});
    EXPECT_TRUE(named.host_allowed("lan-box.local:9000"));
    EXPECT_TRUE(named.host_allowed("localhost:9000"));
    EXPECT_FALSE(named.host_allowed("lan-box.local:8080"));
}

TEST(ApiGuard, AllowHostAndAllowOriginAddNames) {
    const HttpGuard g = loopback({"https://app.example.com"}, {"api.example.net", "box:8080", "::2"});
    EXPECT_TRUE(g.host_allowed("api.example.net"));          // no port given: any port
    EXPECT_TRUE(g.host_allowed("api.example.net:443"));
    EXPECT_TRUE(g.host_allowed("box:8080"));
    EXPECT_FALSE(g.host_allowed("box:9090"));
    EXPECT_TRUE(g.host_allowed("[::2]:8080"));
    EXPECT_TRUE(g.host_allowed("app.example.com"));           // implied by --allow-origin
    EXPECT_FALSE(g.host_allowed("evil.example:8080"));
    EXPECT_THROW(loopback({"app.example.com"}), std::invalid_argument);            // no scheme
    EXPECT_THROW(loopback({"https://app.example.com/path"}), std::invalid_argument);
    EXPECT_THROW(loopback({}, {"bad host"}), std::invalid_argument);
    EXPECT_THROW(loopback({}, {}, "key with space"), std::invalid_argument);
}

TEST(ApiGuard, EveryInterfaceAcceptsAnyHostOnlyWithAKey) {
    const HttpGuard open(GuardConfig{"0.0.0.0", 8080, {}, {}, ""});
    EXPECT_TRUE(open.host_allowed("127.0.0.1:8080"));
    EXPECT_FALSE(open.host_allowed("0.0.0.0:8080"));
    EXPECT_FALSE(open.host_allowed("192.168.1.5:8080"));
    EXPECT_NE(open.exposure_warning("0.0.0.0:8080").find("set --api-key"), std::string::npos);
    const HttpGuard keyed(GuardConfig{"::", 8080, {}, {}, "k"});
    EXPECT_TRUE(keyed.host_allowed("192.168.1.5:8080"));
    EXPECT_TRUE(keyed.host_allowed("evil.example"));
    EXPECT_EQ(keyed.exposure_warning("[::]:8080"), "");
    EXPECT_EQ(loopback().exposure_warning("127.0.0.1:8080"), "");
    EXPECT_NE(HttpGuard(GuardConfig{"192.168.1.5", 8080, {}, {}, ""}).exposure_warning("192.168.1.5:8080").find("WARNING"),
              std::string::npos);
}

TEST(ApiGuard, OriginMustBeThisServerOrAllowed) {
    const HttpGuard g = loopback({"https://app.example.com:443", "http://tool.test:3000/"});
    const std::string host = "127.0.0.1:8080";
    for (const char* ok : {"", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://app.example.com",
                           "HTTPS://APP.EXAMPLE.COM", "http://tool.test:3000"})
        EXPECT_TRUE(g.origin_allowed(ok, host)) << ok;
    for (const char* bad : {"https://evil.example", "null", "http://127.0.0.1:8081", "http://localhost", "https://app.example.com:8443",
                            "http://app.example.com", "file://", "http://evil.example@127.0.0.1:8080"})
        EXPECT_FALSE(g.origin_allowed(bad, host)) << bad;
    // Same-origin under an allowed Host name.
    const HttpGuard named = loopback({}, {"box.lan"});
    EXPECT_TRUE(named.origin_allowed("http://box.lan:8080", "box.lan:8080"));
    EXPECT_FALSE(named.origin_allowed("http://box.lan:8080", "127.0.0.1:8080"));
    EXPECT_TRUE(loopback({"*"}).origin_allowed("null", host));
}

TEST(ApiGuard, KeyIsBearerOrBasicPassword) {
    const HttpGuard g = loopback({}, {}, "sk-right");
    EXPECT_TRUE(g.key_matches("Bearer sk-right"));
    EXPECT_TRUE(g.key_matches("bearer  sk-right "));
    EXPECT_TRUE(g.key_matches("Basic dXNlcjpzay1yaWdodA=="));  // user:sk-right
    EXPECT_TRUE(g.key_matches("Basic OnNrLXJpZ2h0"));          // :sk-right
    for (const char* bad : {"", "Bearer", "Bearer sk-wrong", "Bearer sk-righ", "Bearer sk-right2", "sk-right", "Token sk-right",
                            "Basic c2stcmlnaHQ=", "Basic dXNlcjpzay13cm9uZw=="})
        EXPECT_FALSE(g.key_matches(bad)) << bad;
    EXPECT_TRUE(loopback().key_matches(""));
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abd", "abc"));
    EXPECT_FALSE(constant_time_equal("", "abc"));
    EXPECT_FALSE(constant_time_equal("abcd", "abc"));
}

TEST(ApiGuard, ContentTypeAndOrderOfChecks) {
    EXPECT_TRUE(is_json_content_type("application/json"));
    EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
    for (const char* bad : {"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data",
                            "application/jsonp", "application/json-seq"})
        EXPECT_FALSE(is_json_content_type(bad)) << bad;
    const HttpGuard g = loopback({}, {}, "k");
    const GuardRequest good{"POST", "/v1/completions", "127.0.0.1:8080", "", "Bearer k", "application/json"};
    EXPECT_EQ(refusal(g, good), "");
    auto with = [&](auto change) {
        GuardRequest r = good;
        change(r);
        return refusal(g, r);
    };
    EXPECT_EQ(with([](GuardRequest& r) { r.host = "evil.example:8080"; r.origin = "http://evil.example:8080"; }), "403 host_not_allowed");
    EXPECT_EQ(with([](GuardRequest& r) { r.origin = "https://evil.example"; r.authorization.clear(); }), "403 origin_not_allowed");
    EXPECT_EQ(with([](GuardRequest& r) { r.authorization = "Bearer x"; r.content_type = "text/plain"; }), "401 invalid_api_key");
    EXPECT_EQ(with([](GuardRequest& r) { r.content_type = "text/plain"; }), "415 unsupported_media_type");
    EXPECT_EQ(with([](GuardRequest& r) { r.method = "OPTIONS"; r.authorization.clear(); r.content_type.clear(); }), "");
    EXPECT_EQ(with([](GuardRequest& r) { r.method = "GET"; r.content_type.clear(); }), "");
}

}  // namespace
}  // namespace llmn::api
