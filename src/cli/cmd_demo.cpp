// llm-node demo: a whole swarm on this machine in one command. It starts N
// `llm-node serve` processes, each holding an even share of the layers, and
// an API server that generates through them (with failover), so a fresh clone
// shows the whole system: the status page at / and the OpenAI API at /v1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/api_launch.h"
#include "cli/commands.h"

extern char** environ;

namespace llmn::cli {
namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;  // kept open: a node that prints again must not hit a closed pipe
    std::string address;
};

// Starts `llm-node serve` for one span and waits (bounded) for its address.
Child spawn_node(const std::string& model, int a, int b, int threads, const std::string& key) {
    std::vector<std::string> argv = {"/proc/self/exe", "serve", "-m", model, "--layers", std::to_string(a) + ":" + std::to_string(b),
                                     "--listen", "127.0.0.1:0", "-t", std::to_string(threads), "--key", key};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    Child c;
    const int rc = posix_spawn(&c.pid, "/proc/self/exe", &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    c.out = fds[0];
    if (rc != 0) throw std::runtime_error("cannot start a node process");
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{c.out, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        char buf[512];
        const ssize_t n = read(c.out, buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, size_t(n));
    }
    const auto k = line.find("\"listening\":\"");
    if (k == std::string::npos) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, nullptr, 0);
        throw std::runtime_error("node for layers " + std::to_string(a) + ":" + std::to_string(b) + " did not start (see its log above)");
    }
    c.address = line.substr(k + 13, line.find('"', k + 13) - k - 13);
    return c;
}

struct Children {
    std::vector<Child> list;
    ~Children() {
        for (Child& c : list) kill(c.pid, SIGTERM);
        for (Child& c : list) {
            waitpid(c.pid, nullptr, 0);
            close(c.out);
        }
    }
};

}  // namespace

int cmd_demo(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF model file or name (default: the bundled models/stories260K.gguf)"},
                               {{"--nodes"}, true, "node processes to start (default 3)"},
                               {{"--listen"}, true, "host:port of the API server (default 127.0.0.1:8080)"},
                               {{"-t", "--threads"}, true, "threads per node (default 1)"},
                               {{"--help", "-h"}, false, "show this help"}};
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node demo [MODEL] [--nodes 3] [--listen 127.0.0.1:8080]\n%s", args.help().c_str());
        return 0;
    }
    std::string model = args.str("-m");
    if (model.empty() && !args.positional().empty()) model = args.positional().front();
    if (model.empty()) model = "models/stories260K.gguf";
    LoadedModel lm = load_model(model);
    const int n_layer = lm.model->config().n_layer;
    const int n_nodes = int(args.integer("--nodes", 3));
    if (n_nodes < 1 || n_nodes > n_layer) throw UsageError("--nodes must be between 1 and the model's " + std::to_string(n_layer) + " layers");
    const int threads = int(args.integer("-t", 1));
    if (threads < 1) throw UsageError("-t must be >= 1");
    const std::string path = lm.model->file().path();
    const char* home = std::getenv("HOME");
    const std::filesystem::path keys = std::filesystem::path(home ? home : ".") / ".cache/llm-node/demo";
    std::filesystem::create_directories(keys);

    Children nodes;
    std::vector<std::string> addrs;
    for (int i = 0; i < n_nodes; ++i) {
        const int a = n_layer * i / n_nodes, b = n_layer * (i + 1) / n_nodes;
        nodes.list.push_back(spawn_node(path, a, b, threads, (keys / ("node" + std::to_string(i) + ".key")).string()));
        addrs.push_back(nodes.list.back().address);
        std::fprintf(stderr, "llm-node demo: node %d serves layers %d:%d on %s\n", i + 1, a, b, addrs.back().c_str());
    }
    api::ApiConfig cfg;
    cfg.model_path = path;
    cfg.listen = args.str("--listen", "127.0.0.1:8080");
    cfg.threads = threads;
    cfg.source.kind = client::SessionSource::Kind::nodes;
    cfg.source.addresses = addrs;
    cfg.nodes = node_lister(cfg.source, *lm.model);
    return run_api_server(std::move(cfg));
}

}  // namespace llmn::cli
