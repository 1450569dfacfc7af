// llm-node chat: a conversation in the terminal, through the swarm or (with
// --local) in this process. Each turn renders the whole conversation with the
// model's chat template; when the new prompt's ids extend what the session has
// already evaluated, only the new suffix is evaluated (the KV caches carry the
// rest), otherwise a fresh session evaluates it all.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/weights_cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/swarm_flags.h"
#include "engine/generator.h"
#include "model/chat_template.h"
#include "model/model_store.h"
#include "tensor/thread_pool.h"

namespace llmn::cli {
namespace {

const char* kCommands =
    "  /exit             leave (also Ctrl-D)\n"
    "  /reset            start a new conversation (the system prompt stays)\n"
    "  /system TEXT      set the system prompt (empty TEXT removes it); the turns so far stay\n"
    "  /history          list what you typed in this session\n"
    "  /help             this list\n"
    "  end a line with \\ to continue the message on the next line; start it with // to send a leading /\n";

// Ctrl-C while a reply streams stops that reply; at the prompt it leaves, as
// in a shell. Both flags are lock-free atomics, safe in a signal handler.
std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
    if (g_generating.load()) {
        g_interrupted.store(true);
        return;
    }
    const char nl = '\n';
    [[maybe_unused]] const ssize_t w = write(2, &nl, 1);
    _exit(130);
}

// The model from -m or the one positional argument, else the default model of
// this machine (the bundled stories260K under ./models first).
std::string chosen_model(const Args& args) {
    const std::vector<std::string>& pos = args.positional();
    if (pos.size() > 1 || (pos.size() == 1 && args.has("-m")))
        throw UsageError("give one model (-m MODEL or MODEL), got '" + pos.back() + "' too");
    if (args.has("-m")) return args.str("-m");
    if (!pos.empty()) return pos[0];
    if (auto found = model::default_model()) return found->file;
    throw UsageError("no model given (-m MODEL) and none found on this machine (see 'llm-node models')");
}

// One conversation and the session that holds its KV caches.
class Conversation {
public:
    Conversation(const LoadedModel& lm, client::SessionSource src, int n_ctx, int max_tokens, engine::SamplerConfig sc,
                 tensor::ThreadPool& pool, bool verbose)
        : lm_(lm),
          src_(std::move(src)),
          n_ctx_(n_ctx),
          max_tokens_(max_tokens),
          pool_(pool),
          verbose_(verbose),
          sampler_(sc),
          tmpl_(model::ChatTemplate::detect(lm.model->file().get_string("tokenizer.chat_template", ""),
                                            lm.model->config().spec.arch, lm.tokenizer->vocab().tokens)) {}

    const model::ChatTemplate& chat_template() const { return tmpl_; }
    void set_system(std::string text) { system_ = std::move(text); }
    void reset() { turns_.clear(); }

    // Opens the session now, so that a swarm with no nodes fails before the
    // user types anything.
    void open() {
        session_.reset();  // a remote session closes its hops before new ones open
        session_ = client::open_session(src_, lm_.model, n_ctx_, pool_);
        evaluated_.clear();
    }

    // Runs one user turn and streams the reply to stdout, ending it with a
    // newline. Returns the finish reason ("" when the message was not sent).
    std::string turn(const std::string& user) {
        turns_.push_back({"user", user});
        std::vector<int32_t> ids = prompt_ids();
        auto too_long = [&] { return ids.size() + 1 > size_t(n_ctx_); };  // room for one reply token
        if (too_long() && turns_.size() > 1) {
            std::vector<model::ChatMessage> earlier(turns_.begin(), turns_.end() - 1);
            turns_.erase(turns_.begin(), turns_.end() - 1);
            ids = prompt_ids();
            if (too_long()) turns_.insert(turns_.begin(), earlier.begin(), earlier.end());
            else
                std::fprintf(stderr, "llm-node chat: the conversation no longer fits the context of %d tokens: starting a new one\n",
                             n_ctx_);
        }
        if (too_long()) {
            std::fprintf(stderr, "llm-node chat: this message (%zu tokens with the template) does not fit the context of %d (raise -c)\n",
                         ids.size(), n_ctx_);
            turns_.pop_back();
            return "";
        }
        std::vector<int32_t> suffix, generated;
        engine::GenerateOptions go;
        go.max_tokens = max_tokens_;
        go.stop = tmpl_.turn_stops();
        auto on_text = [](const std::string& text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
            return !g_interrupted.load();
        };
        engine::GenerateResult r;
        try {
            suffix = new_suffix(ids);  // may open a session, which may fail
            g_interrupted.store(false);
            g_generating.store(true);
            r = engine::generate(*session_, *lm_.tokenizer, sampler_, suffix, go, on_text,
                                 [&](int32_t id) { generated.push_back(id); });
        } catch (...) {
            g_generating.store(false);
            if (!generated.empty()) std::fputs("\n", stdout);
            std::fflush(stdout);
            turns_.pop_back();  // the message goes unanswered, as if never sent
            session_.reset();   // its state is unknown now: the next turn opens a new one
            evaluated_.clear();
            throw;
        }
        g_generating.store(false);
        std::fputs("\n", stdout);
        std::fflush(stdout);
        remember(ids, generated);
        if (verbose_)
            std::fprintf(stderr, "[chat] prompt %zu tokens (%zu from the cache), generated %d (%s), %.1f tok/s\n", ids.size(),
                         ids.size() - suffix.size(), r.n_gen, r.finish_reason.c_str(),
                         r.gen_seconds > 0 ? r.n_gen / r.gen_seconds : 0.0);
        turns_.push_back({"assistant", r.text});
        if (r.finish_reason == "length" && r.n_gen < max_tokens_) {
            std::fprintf(stderr, "llm-node chat: the context of %d tokens is full: starting a new conversation\n", n_ctx_);
            turns_.clear();
        }
        return r.finish_reason;
    }

private:
    std::vector<int32_t> prompt_ids() const {
        std::vector<model::ChatMessage> messages;
        if (!system_.empty()) messages.push_back({"system", system_});
        messages.insert(messages.end(), turns_.begin(), turns_.end());
        return lm_.tokenizer->encode(tmpl_.render(messages, true), true, true);
    }

    // What must still be evaluated for `ids`: only the new tail when the
    // session's cache holds a prefix of them; otherwise all of them, in a new
    // session (a Session cannot rewind).
    std::vector<int32_t> new_suffix(const std::vector<int32_t>& ids) {
        const size_t n = evaluated_.size();
        const bool extends = session_ && n > 0 && n < ids.size() && size_t(session_->n_past()) == n &&
                             std::equal(evaluated_.begin(), evaluated_.end(), ids.begin());
        if (extends) return std::vector<int32_t>(ids.begin() + std::ptrdiff_t(n), ids.end());
        if (!session_ || session_->n_past() > 0) open();
        return ids;
    }

    // The ids now in the session's cache: the prompt, then the generated ids
    // except the last one, which generate() samples but never evaluates.
    void remember(const std::vector<int32_t>& ids, const std::vector<int32_t>& generated) {
        evaluated_ = ids;
        evaluated_.insert(evaluated_.end(), generated.begin(), generated.end());
        const size_t n_past = size_t(session_->n_past());
        if (n_past > evaluated_.size()) {
            session_.reset();  // should not happen; never reuse a cache we cannot describe
            evaluated_.clear();
            return;
        }
        evaluated_.resize(n_past);
    }

    const LoadedModel& lm_;
    client::SessionSource src_;
    const int n_ctx_, max_tokens_;
    tensor::ThreadPool& pool_;
    const bool verbose_;
    engine::Sampler sampler_;
    model::ChatTemplate tmpl_;
    std::string system_;
    std::vector<model::ChatMessage> turns_;
    std::unique_ptr<engine::Session> session_;
    std::vector<int32_t> evaluated_;
};

// Reads one message; a line ending in '\' continues on the next line. False at
// end of input with nothing read.
bool read_message(bool tty, std::string& out) {
    out.clear();
    std::string line;
    bool any = false;
    while (std::getline(std::cin, line)) {
        any = true;
        if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF input files
        if (line.empty() || line.back() != '\\') {
            out += line;
            return true;
        }
        line.pop_back();
        out += line + "\n";
        if (tty) std::fputs(". ", stderr);
    }
    return any;
}

}  // namespace

int cmd_chat(int argc, char** argv) {
    std::vector<Flag> flags = {{{"-m", "--model"}, true, "GGUF model file or name (default: the first model found)"},
                               {{"--system"}, true, "system prompt"},
                               {{"-n", "--n-predict"}, true, "most tokens per reply (default 512)"},
                               {{"-t", "--threads"}, true, "threads (default: all cores)"},
                               {{"-c", "--ctx-size"}, true, "context size (default: min(4096, trained))"},
                               {{"--verbose"}, false, "after each reply, its token counts and speed on stderr"},
                               {{"--help", "-h"}, false, "show this help"}};
    for (Flag& f : sampler_flags()) flags.push_back(f);
    for (Flag& f : session_flags(true)) flags.push_back(f);
    Args args(argc, argv, 2, flags);
    if (args.has("--help")) {
        std::printf("usage: llm-node chat [-m MODEL | MODEL] [options]\n%s\ncommands at the prompt:\n%s", args.help().c_str(),
                    kCommands);
        return 0;
    }
    const engine::SamplerConfig sc = sampler_config(args);
    const int64_t n_predict = args.integer("-n", 512);
    if (n_predict < 1) throw UsageError("-n must be >= 1");
    const int threads = thread_count(args);
    const LoadedModel lm = load_model(client_model(args, chosen_model(args)));  // a model id: fetched from the swarm
    const model::ModelConfig& cfg = lm.model->config();
    const int64_t n_ctx = args.integer("-c", std::min<int64_t>(4096, cfg.n_ctx_train > 0 ? cfg.n_ctx_train : 4096));
    if (n_ctx < 8) throw UsageError("-c must be >= 8");

    tensor::ThreadPool pool(threads);
    const client::SessionSource src = session_source(args, *lm.model, true);
    const bool local = src.kind == client::SessionSource::Kind::local;
    // Locally every weight is needed for the first token; through the swarm only
    // the embeddings, the head and any --local-layers are read here.
    prefault_with_progress(*lm.model, {0, local ? cfg.n_layer : src.remote.local_layers, true}, "loading weights");
    Conversation chat(lm, src, int(n_ctx), int(std::min<int64_t>(n_predict, 1 << 30)), sc, pool,
                      args.has("--verbose"));
    chat.set_system(args.str("--system"));
    chat.open();

    const bool tty = isatty(0);
    if (tty) {
        std::signal(SIGINT, on_sigint);
        std::fprintf(stderr, "llm-node chat: %s (layers: %s; %s template; context %lld). /help for commands, Ctrl-D to leave.\n",
                     lm.model->path().c_str(), src.describe().c_str(), std::string(chat.chat_template().name()).c_str(),
                     (long long)n_ctx);
    }
    std::vector<std::string> history;
    std::string text;
    for (;;) {
        if (tty) std::fputs("> ", stderr);
        if (!read_message(tty, text)) break;
        if (text.empty()) continue;
        history.push_back(text);
        if (text[0] == '/' && text.rfind("//", 0) != 0) {
            const size_t sp = text.find(' ');
            const std::string cmd = text.substr(0, sp);
            const std::string rest = sp == std::string::npos ? "" : text.substr(sp + 1);
            if (cmd == "/exit" || cmd == "/quit") break;
            if (cmd == "/reset") {
                chat.reset();
                if (tty) std::fputs("(new conversation)\n", stderr);
            } else if (cmd == "/system") {
                chat.set_system(rest);
                if (tty) std::fputs(rest.empty() ? "(no system prompt)\n" : "(system prompt set)\n", stderr);
            } else if (cmd == "/history") {
                for (size_t i = 0; i + 1 < history.size(); ++i) std::fprintf(stderr, "%4zu  %s\n", i + 1, history[i].c_str());
            } else if (cmd == "/help") {
                std::fputs(kCommands, stderr);
            } else {
                std::fprintf(stderr, "unknown command %s (/help lists them)\n", cmd.c_str());
            }
            continue;
        }
        if (text[0] == '/') text.erase(0, 1);
        try {
            const std::string reason = chat.turn(text);
            if (reason == "cancelled" && tty) std::fputs("(stopped)\n", stderr);
        } catch (const std::exception& e) {
            // At a terminal one failed turn (a node lost for good) leaves the
            // conversation usable; in a script it is the command's failure.
            if (!tty) throw;
            std::fprintf(stderr, "llm-node chat: error: %s\n", e.what());
        }
    }
    if (tty) std::fputs("\n", stderr);
    return 0;
}

}  // namespace llmn::cli
