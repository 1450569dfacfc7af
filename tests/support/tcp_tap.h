// A TCP tap for tests: listens on 127.0.0.1 (port 0), forwards every
// connection to `target` and keeps a copy of the bytes each way, so a test can
// look at exactly what went over a link. Threads per connection; bounded by
// the test's lifetime (the destructor closes everything and joins).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace llmn::testing {

class TcpTap {
public:
    struct Stream {
        std::string to_target, from_target;  // bytes as they crossed the wire
    };

    explicit TcpTap(const std::string& target) {
        const auto colon = target.rfind(':');
        target_port_ = std::stoi(target.substr(colon + 1));
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0)
            throw std::runtime_error("tap: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~TcpTap() {
        stop_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        ::close(listen_fd_);
        acceptor_.join();
        for (auto& t : pumps_) t.join();
    }
    const std::string& address() const { return address_; }
    std::vector<Stream> streams() {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<Stream> out;
        for (auto& s : streams_) out.push_back(*s);
        return out;
    }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const int c = ::accept(listen_fd_, nullptr, nullptr);
            if (c < 0) continue;
            const int t = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(uint16_t(target_port_));
            if (::connect(t, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(c);
                ::close(t);
                continue;
            }
            std::lock_guard<std::mutex> lock(mu_);
            streams_.push_back(std::make_unique<Stream>());
            Stream* s = streams_.back().get();
            pumps_.emplace_back([this, c, t, s] { pump(c, t, s); });
        }
    }
    // Copies both ways until either side closes or the tap stops.
    void pump(int c, int t, Stream* s) {
        char buf[65536];
        for (bool open = true; open && !stop_;) {
            pollfd p[2] = {{c, POLLIN, 0}, {t, POLLIN, 0}};
            if (::poll(p, 2, 100) <= 0) continue;
            for (int i = 0; i < 2 && open; ++i) {
                if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    open = false;
                    break;
                }
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    (i == 0 ? s->to_target : s->from_target).append(buf, size_t(n));
                }
                const int out = i == 0 ? t : c;
                for (ssize_t done = 0; done < n;) {
                    const ssize_t w = ::send(out, buf + done, size_t(n - done), MSG_NOSIGNAL);
                    if (w <= 0) {
                        open = false;
                        break;
                    }
                    done += w;
                }
            }
        }
        ::close(c);
        ::close(t);
    }

    int listen_fd_ = -1, target_port_ = 0;
    std::string address_;
    std::atomic<bool> stop_{false};
    std::thread acceptor_;
    std::mutex mu_;
    std::vector<std::unique_ptr<Stream>> streams_;
    std::vector<std::thread> pumps_;
};

}  // namespace llmn::testing
