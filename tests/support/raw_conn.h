// A blocking TCP connection whose every wait is bounded, and `u32 length |
// body` framing, for tests that write raw bytes at a node (hostile_peer.h).
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace llmn::testing {

using Bytes = std::vector<uint8_t>;
using HpClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline void hp_store_le32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint32_t hp_load_le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
// `u32 length | body`.
inline Bytes framed(const Bytes& body) {
    Bytes f(4 + body.size());
    hp_store_le32(f.data(), uint32_t(body.size()));
    std::copy(body.begin(), body.end(), f.begin() + 4);
    return f;
}
inline Bytes prefix_only(uint32_t len) {
    Bytes f(4);
    hp_store_le32(f.data(), len);
    return f;
}

// A blocking IPv4 TCP connection; every wait is bounded.
class RawConn {
public:
    enum class Got { ok, eof, timeout, error };

    RawConn() = default;
    explicit RawConn(int fd) : fd_(fd) {}
    RawConn(RawConn&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    RawConn& operator=(RawConn&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~RawConn() { close(); }

    // Connects to "ip:port" (IPv4 literal); throws on failure.
    static RawConn dial(const std::string& address) {
        const auto colon = address.rfind(':');
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(uint16_t(std::stoi(address.substr(colon + 1))));
        if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1)
            throw std::runtime_error("not an IPv4 address: " + address);
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
        RawConn c(fd);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            throw std::runtime_error("connect " + address + ": " + strerror(errno));
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return c;
    }

    int fd() const { return fd_; }
    bool is_open() const { return fd_ >= 0; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // Closes with an RST instead of a FIN (SO_LINGER 0).
    void reset() {
        if (fd_ < 0) return;
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }

    // False when the peer is gone (EPIPE, ECONNRESET).
    bool send_all(const uint8_t* p, size_t n) {
        while (n > 0) {
            const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return false;
            p += w;
            n -= size_t(w);
        }
        return true;
    }
    bool send_all(const Bytes& b) { return send_all(b.data(), b.size()); }

    // Exactly n bytes within `timeout`.
    Got read_exact(uint8_t* p, size_t n, milliseconds timeout) {
        const auto deadline = HpClock::now() + timeout;
        while (n > 0) {
            const Got w = wait_readable(deadline);
            if (w != Got::ok) return w;
            const ssize_t r = ::recv(fd_, p, n, 0);
            if (r == 0) return Got::eof;
            if (r < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                return errno == ECONNRESET ? Got::eof : Got::error;
            }
            p += r;
            n -= size_t(r);
        }
        return Got::ok;
    }

    // Reads and discards until the peer closes (FIN or RST); the time that
    // took, or nullopt when the connection is still open after `timeout`.
    std::optional<milliseconds> wait_closed(milliseconds timeout) {
        const auto t0 = HpClock::now();
        const auto deadline = t0 + timeout;
        uint8_t buf[4096];
        for (;;) {
            const Got w = wait_readable(deadline);
            if (w == Got::timeout) return std::nullopt;
            const ssize_t r = w == Got::ok ? ::recv(fd_, buf, sizeof buf, 0) : -1;
            if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN))) continue;
            return std::chrono::duration_cast<milliseconds>(HpClock::now() - t0);
        }
    }

private:
    Got wait_readable(HpClock::time_point deadline) {
        for (;;) {
            // At least one poll, so a zero timeout still sees what is there.
            const auto left = std::max<long long>(0, std::chrono::duration_cast<milliseconds>(deadline - HpClock::now()).count());
            pollfd pfd{fd_, POLLIN, 0};
            const int r = ::poll(&pfd, 1, int(left));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return Got::error;
            if (r == 0) return Got::timeout;
            return Got::ok;  // readable, hung up or in error: recv says which
        }
    }

    int fd_ = -1;
};

}  // namespace llmn::testing
