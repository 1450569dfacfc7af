// Runs a program with an argument vector (no shell, so no quoting problems),
// stdin from /dev/null (or a given file), stdout and stderr captured separately, under a hard
// wall-clock timeout after which the child is killed (SIGKILL) and reaped.
// Header-only: tests/CMakeLists.txt globs only tests/cli/*_test.cpp into cli_tests.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace llmn::testing {

struct ProcessResult {
    int exit_code = -1;      // exit status when the child exited normally, else -1
    int term_signal = 0;     // signal that ended the child, 0 when it exited
    bool timed_out = false;  // killed by us after the timeout
    bool spawn_failed = false;
    std::string out;         // everything written to stdout
    std::string err;         // everything written to stderr
    double seconds = 0.0;

    // "exit 1" / "signal 11" / "timed out": for failure messages.
    std::string status() const {
        if (spawn_failed) return "spawn failed: " + err;
        if (timed_out) return "timed out after " + std::to_string(seconds) + " s";
        if (term_signal) return "killed by signal " + std::to_string(term_signal);
        return "exit " + std::to_string(exit_code);
    }
    // The status, then the tails of stderr and stdout.
    std::string describe(size_t tail = 400) const {
        auto cut = [&](const std::string& s) { return s.size() > tail ? "..." + s.substr(s.size() - tail) : s; };
        return status() + "\n  stderr: " + cut(err) + "\n  stdout: " + cut(out);
    }
};

// Runs argv[0] (a path) with argv, for at most `timeout_s` seconds, reading
// stdin from `stdin_path`.
inline ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s = 120.0,
                                 const std::string& stdin_path = "/dev/null") {
    ProcessResult r;
    const auto t0 = std::chrono::steady_clock::now();
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (argv.empty() || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        r.spawn_failed = true;
        r.err = argv.empty() ? "empty argv" : std::strerror(errno);
        return r;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        r.spawn_failed = true;
        r.err = argv[0] + ": " + std::strerror(rc);
        return r;
    }
    const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(timeout_s));
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            r.timed_out = true;
            break;
        }
        const int wait_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
        const int n = poll(fds, 2, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                sinks[i]->append(buf, size_t(got));
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    if (r.timed_out) kill(pid, SIGKILL);
    for (pollfd& f : fds)
        if (f.fd >= 0) close(f.fd);
    // The pipes are closed (EOF) or we killed the child; reap it, killing it if it
    // lingers past the deadline with its output closed.
    int status = 0;
    for (;;) {
        const pid_t w = waitpid(pid, &status, r.timed_out ? 0 : WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            continue;
        }
        usleep(2000);
    }
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

// Splits text into lines (without their '\n'); a final unterminated line is kept.
inline std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> lines;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find('\n', i);
        if (j == std::string::npos) j = s.size();
        lines.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return lines;
}

}  // namespace llmn::testing
