// One generic encoder, decoder and printer, each a visitor over the fields that
// a message's visit() lists. Integers are written little-endian byte by byte,
// fixed arrays raw, strings and byte vectors as u32 length + bytes. The decoder
// checks every length against its limit and the remaining bytes before it
// allocates anything.
#include "net/messages.h"

#include "net/identity.h"  // to_hex

#include <concepts>
#include <cstring>
#include <limits>
#include <utility>

namespace llmn::net {

// Type ids are frozen: peers of other builds depend on them.
static_assert(uint8_t(MsgType::hello) == 1);
static_assert(uint8_t(MsgType::auth) == 2);
static_assert(uint8_t(MsgType::open_session) == 3);
static_assert(uint8_t(MsgType::step) == 4);
static_assert(uint8_t(MsgType::result) == 5);
static_assert(uint8_t(MsgType::close) == 6);
static_assert(uint8_t(MsgType::error) == 7);
static_assert(uint8_t(MsgType::ping) == 8);
static_assert(uint8_t(MsgType::pong) == 9);
static_assert(uint8_t(MsgType::opened) == 10);
static_assert(uint8_t(MsgType::node_info) == 11);
static_assert(uint8_t(MsgType::circuit_extend) == 12 && uint8_t(MsgType::onion_layer) == 16);
static_assert(uint8_t(MsgType::dial_back) == 17 && uint8_t(MsgType::relay_ready) == 24);
static_assert(uint8_t(WireDType::f32) == 0 && uint8_t(WireDType::f16) == 1);

namespace {

// The decoder's dispatch table relies on alternative i having type id i + 1.
template <size_t... I>
constexpr bool ids_follow_variant_order(std::index_sequence<I...>) {
    return ((uint8_t(std::variant_alternative_t<I, Message>::type) == I + 1) && ...);
}
constexpr size_t kNumTypes = std::variant_size_v<Message>;
static_assert(ids_follow_variant_order(std::make_index_sequence<kNumTypes>{}));

const char* type_name(uint8_t t) {
    static const char* const names[] = {"?", "hello", "auth", "open_session", "step", "result",
                                        "close", "error", "ping", "pong", "opened", "node_info",
                                        "circuit_extend", "circuit_cell", "circuit_join", "circuit_ready", "onion_layer",
                                        "dial_back", "dial_back_result", "relay_register", "relay_registered",
                                        "relay_dial", "relay_incoming", "relay_accept", "relay_ready", "probe_request",
                                        "probe_answer", "receipt"};
    static_assert(std::size(names) == kNumTypes + 1);
    return t <= kNumTypes ? names[t] : "?";
}

std::string fmt_u(uint64_t v) { return std::to_string(v); }

class Encoder {
public:
    explicit Encoder(std::vector<uint8_t>& out) : out_(out) {}

    template <std::unsigned_integral T>
    void operator()(const T& v) {
        for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(uint8_t(uint64_t(v) >> (8 * i)));
    }
    template <size_t N>
    void operator()(const std::array<uint8_t, N>& a) {
        append(a.data(), N);
    }
    void operator()(const std::string& s) { put_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
    void operator()(const std::vector<uint8_t>& b) { put_bytes(b.data(), b.size()); }

private:
    void put_bytes(const uint8_t* p, size_t n) {
        if (n > std::numeric_limits<uint32_t>::max())
            throw NetError(Errc::frame_too_large, "field of " + fmt_u(n) + " bytes does not fit a u32 length");
        (*this)(uint32_t(n));
        append(p, n);
    }
    // resize + memcpy rather than insert: g++ 12 -O2 warns falsely about insert here.
    void append(const uint8_t* p, size_t n) {
        if (n == 0) return;
        const size_t at = out_.size();
        out_.resize(at + n);
        std::memcpy(out_.data() + at, p, n);
    }
    std::vector<uint8_t>& out_;
};

class Decoder {
public:
    Decoder(const uint8_t* data, size_t size, const DecodeLimits& limits, uint8_t type)
        : p_(data), n_(size), limits_(limits), type_(type) {}

    template <std::unsigned_integral T>
    void operator()(T& v) {
        begin_field();
        need(sizeof(T), "an integer");
        uint64_t x = 0;
        for (size_t i = 0; i < sizeof(T); ++i) x |= uint64_t(p_[pos_ + i]) << (8 * i);
        v = T(x);
        pos_ += sizeof(T);
    }
    template <size_t N>
    void operator()(std::array<uint8_t, N>& a) {
        begin_field();
        need(N, "a fixed array");
        std::copy(p_ + pos_, p_ + pos_ + N, a.begin());
        pos_ += N;
    }
    void operator()(std::string& s) {
        begin_field();
        const uint32_t len = length(limits_.max_string, "string");
        s.assign(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
    }
    void operator()(std::vector<uint8_t>& b) {
        begin_field();
        const uint32_t len = length(limits_.max_bytes, "byte vector");
        b.assign(p_ + pos_, p_ + pos_ + len);
        pos_ += len;
    }

    void finish() const {
        if (pos_ != n_)
            throw NetError(Errc::bad_message, where() + fmt_u(n_ - pos_) + " trailing bytes after the last field");
    }
    [[noreturn]] void bad_value(const std::string& what) const {
        throw NetError(Errc::bad_message, std::string(type_name(type_)) + ": " + what);
    }

private:
    void begin_field() { ++field_; }
    std::string where() const {
        return std::string(type_name(type_)) + " field " + fmt_u(field_) + " at offset " + fmt_u(pos_) + ": ";
    }
    void need(size_t k, const char* what) const {
        if (n_ - pos_ < k)
            throw NetError(Errc::truncated, where() + what + " needs " + fmt_u(k) + " bytes, " + fmt_u(n_ - pos_) +
                                                " left in a " + fmt_u(n_) + "-byte message");
    }
    // A u32 length, checked against its limit and then against the bytes left,
    // both before the caller allocates.
    uint32_t length(uint32_t limit, const char* what) {
        need(4, "a length");
        uint32_t len = 0;
        for (size_t i = 0; i < 4; ++i) len |= uint32_t(p_[pos_ + i]) << (8 * i);
        if (len > limit)
            throw NetError(Errc::bad_message,
                           where() + what + " of " + fmt_u(len) + " bytes exceeds the limit of " + fmt_u(limit));
        pos_ += 4;
        need(len, what);
        return len;
    }

    const uint8_t* p_;
    size_t n_;
    size_t pos_ = 1;  // after the type byte
    const DecodeLimits& limits_;
    uint8_t type_;
    int field_ = 0;
};

class Printer {
public:
    explicit Printer(std::string& out) : out_(out) {}

    template <std::unsigned_integral T>
    void operator()(const T& v) {
        sep();
        out_ += fmt_u(v);
    }
    template <size_t N>
    void operator()(const std::array<uint8_t, N>& a) {
        sep();
        constexpr size_t shown = N < 4 ? N : 4;  // a short prefix identifies a key in logs
        out_ += to_hex(a.data(), shown);
        if (shown < N) out_ += "..";
    }
    void operator()(const std::string& s) {
        sep();
        out_ += '"';
        const size_t shown = s.size() < 80 ? s.size() : 80;
        for (size_t i = 0; i < shown; ++i) {
            const unsigned char c = s[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                out_ += char(c);
            } else {
                static const char* hex = "0123456789abcdef";
                out_ += "\\x";
                out_ += hex[c >> 4];
                out_ += hex[c & 15];
            }
        }
        if (shown < s.size()) out_ += "...";
        out_ += '"';
    }
    void operator()(const std::vector<uint8_t>& b) {
        sep();
        out_ += '<';
        out_ += fmt_u(b.size());
        out_ += " bytes>";
    }

private:
    void sep() {
        if (!first_) out_ += ", ";
        first_ = false;
    }
    std::string& out_;
    bool first_ = true;
};

// Field values that no valid peer sends.
void check_dtype(const Decoder& d, uint8_t dtype) {
    if (dtype > uint8_t(WireDType::f16))
        d.bad_value("dtype " + fmt_u(dtype) + " is not a wire dtype (0 = f32, 1 = f16)");
}
template <class T>
void validate(const Decoder&, const T&) {}
void validate(const Decoder& d, const OpenSession& m) { check_dtype(d, m.wire_dtype); }
void validate(const Decoder& d, const Step& m) { check_dtype(d, m.dtype); }
void validate(const Decoder& d, const Result& m) { check_dtype(d, m.dtype); }
void validate(const Decoder& d, const NodeInfo& m) {
    if (m.reach > uint8_t(Reach::relayed)) d.bad_value("reach " + fmt_u(m.reach) + " is not a Reach value");
    if (m.relayed.size() % 32 != 0 || m.relayed.size() > 32 * 256)
        d.bad_value("relayed list of " + fmt_u(m.relayed.size()) + " bytes is not up to 256 identities of 32 bytes");
}

template <class T>
Message decode_as(Decoder& d) {
    T m;
    m.visit(d);
    d.finish();
    validate(d, m);
    return m;
}

using DecodeFn = Message (*)(Decoder&);
template <size_t... I>
constexpr std::array<DecodeFn, sizeof...(I)> make_decode_table(std::index_sequence<I...>) {
    return {&decode_as<std::variant_alternative_t<I, Message>>...};
}
constexpr auto kDecodeTable = make_decode_table(std::make_index_sequence<kNumTypes>{});

}  // namespace

std::vector<uint8_t> encode(const Message& m) {
    std::vector<uint8_t> out;
    std::visit(
        [&](const auto& msg) {
            out.push_back(uint8_t(msg.type));
            Encoder enc(out);
            // visit() is not const, but the encoder only reads the fields.
            const_cast<std::decay_t<decltype(msg)>&>(msg).visit(enc);
        },
        m);
    return out;
}

Message decode(const uint8_t* data, size_t size, const DecodeLimits& limits) {
    if (size == 0) throw NetError(Errc::truncated, "empty message (no type byte)");
    const uint8_t type = data[0];
    if (type == 0 || type > kNumTypes)
        throw NetError(Errc::bad_message, "unknown message type " + fmt_u(type) + " (this node knows 1.." +
                                              fmt_u(kNumTypes) + ")");
    Decoder d(data, size, limits, type);
    return kDecodeTable[type - 1](d);
}

const char* reach_name(uint8_t r) {
    static const char* const names[] = {"unknown", "direct", "mapped", "relayed"};
    return r < std::size(names) ? names[r] : "?";
}

MsgType type_of(const Message& m) {
    return std::visit([](const auto& msg) { return msg.type; }, m);
}

std::string to_string(const Message& m) {
    std::string out = type_name(uint8_t(type_of(m)));
    out += '{';
    std::visit(
        [&](const auto& msg) {
            Printer p(out);
            const_cast<std::decay_t<decltype(msg)>&>(msg).visit(p);
        },
        m);
    out += '}';
    return out;
}

}  // namespace llmn::net
