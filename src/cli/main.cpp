// llm-node: one binary, one subcommand per file in cli/.
#include <cstdio>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"

namespace {

const char* kUsage =
    "usage: llm-node COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  generate   generate text from a prompt (-m MODEL -p TEXT)\n"
    "  info       describe a GGUF model (family, size, quantization, layers)\n"
    "  tokenize   print the token ids of a text\n"
    "  logits     print the top raw logits of a token sequence\n"
    "  perplexity score a text file (llama-perplexity's method)\n"
    "  bench      prompt and generation tokens/s and peak memory (llama-bench style)\n"
    "  serve      serve a span of layers to the network (--layers a:b --listen HOST:PORT)\n"
    "  start      join the swarm: pick the layers where it is weakest and serve them\n"
    "  swarm      list the nodes serving a model and the layers each covers\n"
    "  models     list the GGUF models found on this machine (--swarm: those the swarm serves)\n"
    "  share      seed a local GGUF to the swarm and print its model id\n"
    "  chat       chat with a model in the terminal (locally or through the swarm)\n"
    "  api        OpenAI-compatible HTTP API and swarm status page\n"
    "  demo       a 3-node swarm and an API server on this machine, in one command\n"
    "\n"
    "run 'llm-node COMMAND --help' for the options of a command\n";

}  // namespace

int main(int argc, char** argv) {
    // A closed pipe (stdout to a reader that left, a peer's socket) must be an
    // error on that write, not the death of a node serving others.
    std::signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "generate") return llmn::cli::cmd_generate(argc, argv);
        if (cmd == "info") return llmn::cli::cmd_info(argc, argv);
        if (cmd == "tokenize") return llmn::cli::cmd_tokenize(argc, argv);
        if (cmd == "logits") return llmn::cli::cmd_logits(argc, argv);
        if (cmd == "perplexity") return llmn::cli::cmd_perplexity(argc, argv);
        if (cmd == "bench") return llmn::cli::cmd_bench(argc, argv);
        if (cmd == "serve") return llmn::cli::cmd_serve(argc, argv);
        if (cmd == "start") return llmn::cli::cmd_start(argc, argv);
        if (cmd == "swarm") return llmn::cli::cmd_swarm(argc, argv);
        if (cmd == "models") return llmn::cli::cmd_models(argc, argv);
        if (cmd == "chat") return llmn::cli::cmd_chat(argc, argv);
        if (cmd == "api") return llmn::cli::cmd_api(argc, argv);
        if (cmd == "demo") return llmn::cli::cmd_demo(argc, argv);
        if (cmd == "share") return llmn::cli::cmd_share(argc, argv);
        std::fprintf(stderr, "llm-node: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
        return 2;
    } catch (const llmn::cli::UsageError& e) {
        std::fprintf(stderr, "llm-node %s: %s (see 'llm-node %s --help')\n", cmd.c_str(), e.what(), cmd.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "llm-node %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
