// Helpers for tests/node/hostile_round2_test.cpp: raw connections from a chosen
// loopback source address, a send with a deadline, /proc counts of a node, and
// two small TCP servers in test threads (a sink that holds or drops every
// connection, and a proxy that forwards each one after a delay). Every wait
// is bounded; destructors close every socket and join every thread.
#pragma once
#include <dirent.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "support/raw_conn.h"

namespace llmn::testing::round2 {

// A TCP connection to "ip:port" whose source is `local_ip` (e.g. 127.0.0.2);
// throws on failure.
inline RawConn dial_from(const std::string& local_ip, const std::string& address) {
    const auto colon = address.rfind(':');
    sockaddr_in to{}, from{};
    to.sin_family = from.sin_family = AF_INET;
    to.sin_port = htons(uint16_t(std::stoi(address.substr(colon + 1))));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr) != 1 || inet_pton(AF_INET, local_ip.c_str(), &from.sin_addr) != 1)
        throw std::runtime_error("not IPv4: " + address + " from " + local_ip);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
    RawConn c(fd);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
        throw std::runtime_error("bind " + local_ip + ": " + strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
        throw std::runtime_error("connect " + address + " from " + local_ip + ": " + strerror(errno));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

enum class Sent { all, blocked, closed };
// Writes all of `b` unless the peer stops taking bytes until `deadline`
// (blocked: the stream is then cut mid-frame) or the connection ends (closed).
inline Sent send_before(RawConn& c, const Bytes& b, HpClock::time_point deadline) {
    size_t off = 0;
    while (off < b.size()) {
        const ssize_t w = ::send(c.fd(), b.data() + off, b.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += size_t(w);
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Sent::closed;
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - HpClock::now()).count();
        if (left <= 0) return Sent::blocked;
        pollfd p{c.fd(), POLLOUT, 0};
        if (::poll(&p, 1, int(std::min<long long>(left, 100))) > 0 && (p.revents & (POLLERR | POLLHUP))) return Sent::closed;
    }
    return Sent::all;
}

// Bytes the kernel holds for us that we have not read (FIONREAD).
inline size_t unread_bytes(const RawConn& c) {
    int n = 0;
    return ::ioctl(c.fd(), FIONREAD, &n) == 0 ? size_t(n) : 0;
}

// Open file descriptors of a process (entries of /proc/PID/fd).
inline int fd_count(pid_t pid) {
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    int n = 0;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

// Sets an environment variable for a node started in its scope.
struct ScopedEnv {
    std::string name;
    ScopedEnv(std::string n, const char* value) : name(std::move(n)) { ::setenv(name.c_str(), value, 1); }
    ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

// A listener on 127.0.0.1 (port 0) run by a test thread. Every accepted
// connection goes to on_accept(fd), which owns it from then on.
class TestServer {
public:
    const std::string& address() const { return address_; }
    int accepted() const { return accepted_; }
    virtual ~TestServer() { stop(); }

protected:
    void start() {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 512) != 0)
            throw std::runtime_error("test server: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
        acceptor_ = std::thread([this] {
            while (!stop_) {
                pollfd p{listen_fd_, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) continue;
                ++accepted_;
                on_accept(c);
            }
        });
    }
    // Derived destructors call this first, so on_accept never runs on a half-destroyed object.
    void stop() {
        if (stop_.exchange(true)) return;
        if (acceptor_.joinable()) acceptor_.join();
        ::close(listen_fd_);
        std::lock_guard lock(mu_);
        for (auto& t : threads_) t.join();
        for (int fd : held_) ::close(fd);
    }
    virtual void on_accept(int fd) = 0;

    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::thread> threads_;
    std::vector<int> held_;

private:
    int listen_fd_ = -1;
    std::string address_;
    std::atomic<int> accepted_{0};
    std::thread acceptor_;
};

// Accepts and then never speaks (hold) or closes at once (drop).
class TcpSink : public TestServer {
public:
    enum class Mode { hold, drop };
    explicit TcpSink(Mode m) : mode_(m) { start(); }
    ~TcpSink() override { stop(); }

private:
    void on_accept(int fd) override {
        if (mode_ == Mode::drop) return void(::close(fd));
        std::lock_guard lock(mu_);
        held_.push_back(fd);
    }
    Mode mode_;
};

// Forwards each connection to `target` after `delay`: a next hop that is slow
// to answer (its HELLO comes `delay` late) but then real.
class SlowProxy : public TestServer {
public:
    SlowProxy(std::string target, milliseconds delay) : target_(std::move(target)), delay_(delay) { start(); }
    ~SlowProxy() override { stop(); }

private:
    void on_accept(int c) override {
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, c] {
            for (auto until = HpClock::now() + delay_; HpClock::now() < until && !stop_;) std::this_thread::sleep_for(milliseconds(10));
            RawConn down(c), up;
            try {
                up = RawConn::dial(target_);
            } catch (const std::exception&) {
                return;
            }
            char buf[65536];
            for (bool open = true; open && !stop_;) {
                pollfd p[2] = {{down.fd(), POLLIN, 0}, {up.fd(), POLLIN, 0}};
                if (::poll(p, 2, 100) <= 0) continue;
                for (int i = 0; i < 2 && open; ++i) {
                    if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                    const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
                    open = n > 0 && (i == 0 ? up : down).send_all(reinterpret_cast<uint8_t*>(buf), size_t(n));
                }
            }
        });
    }
    std::string target_;
    milliseconds delay_;
};

}  // namespace llmn::testing::round2
