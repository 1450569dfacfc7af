// A real `llm-node serve` process on 127.0.0.1 (port 0), for multi-node tests.
// The constructor waits (bounded) for the node's first stdout line, which names
// the bound address; the destructor stops it (SIGTERM, then SIGKILL) and reaps it.
// stderr goes to a log file under the test temp folder.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

extern char** environ;

namespace llmn::testing {

class NodeProcess {
public:
    // `llm-node serve` of one span on 127.0.0.1 (port 0).
    NodeProcess(const std::string& model, const std::string& layers, std::vector<std::string> extra = {}, int threads = 1)
        : NodeProcess(with(std::vector<std::string>{"serve", "-m", model, "--layers", layers, "--listen", "127.0.0.1:0", "-t",
                                                    std::to_string(threads)},
                           extra)) {}
    // Any llm-node command that prints {"listening":"ip:port",...} first (serve, start),
    // waiting up to `wait` for that line; with wait 0, returns at once (see wait_listening).
    explicit NodeProcess(std::vector<std::string> command, std::chrono::seconds wait = std::chrono::seconds(30)) {
        static int counter = 0;
        log_ = temp_path("node-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + ".log");
        std::vector<std::string> argv = {llm_node_binary()};
        argv.insert(argv.end(), command.begin(), command.end());
        if (command.front() == "serve" || command.front() == "start") argv.insert(argv.end(), {"--key", log_ + ".key"});
        // stdout goes to a file, so the node can print later lines (a span
        // move) after we have read the first one.
        const std::string out_path = log_ + ".out";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
        if (wait.count() == 0) return;
        if (!wait_listening(wait)) {
            stop();
            throw std::runtime_error("node did not start: " + read_file(log_));
        }
    }
    // Waits (bounded) for the first stdout line, {"listening":"127.0.0.1:PORT",...},
    // and takes the address from it; false when it did not come.
    bool wait_listening(std::chrono::seconds wait) {
        const std::string out_path = log_ + ".out";
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline && alive()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            line = read_file(out_path);
        }
        if (line.find('\n') == std::string::npos) line = read_file(out_path);
        const auto key = line.find("\"listening\":\"");
        if (key == std::string::npos) return false;
        const auto start = key + 13;
        address_ = line.substr(start, line.find('"', start) - start);
        return true;
    }
    std::string out_path() const { return log_ + ".out"; }
    ~NodeProcess() { stop(); }
    NodeProcess(const NodeProcess&) = delete;
    NodeProcess& operator=(const NodeProcess&) = delete;

    static std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }
    const std::string& address() const { return address_; }
    pid_t pid() const { return pid_; }
    std::string log() const { return read_file(log_); }
    // The value of "key" in the first stdout line (e.g. "address", "node_id"), or "".
    std::string field(const std::string& key) const {
        const std::string out = read_file(log_ + ".out"), tag = "\"" + key + "\":\"";
        const auto at = out.find(tag);
        if (at == std::string::npos) return "";
        const auto start = at + tag.size();
        return out.substr(start, out.find('"', start) - start);
    }
    bool alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

    void kill_now() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 50; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill_now();
    }

private:
    pid_t pid_ = -1;
    std::string address_;
    std::string log_;
};

}  // namespace llmn::testing
