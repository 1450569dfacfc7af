// llm-node perplexity: llama-perplexity's method (../shared/reference/perplexity/README.md):
// non-overlapping chunks of n_ctx tokens, each from an empty cache with BOS first
// where the model adds BOS, scoring only the second half of each chunk.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli/commands.h"
#include "engine/local_session.h"
#include "tensor/thread_pool.h"

namespace llmn::cli {

int cmd_perplexity(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file"},
               {{"-f", "--file"}, true, "text file to score"},
               {{"-c", "--ctx-size"}, true, "tokens per chunk (default 512)"},
               {{"-b", "--batch-size"}, true, "tokens per forward call (default: n_ctx)"},
               {{"-t", "--threads"}, true, "threads (default: all cores)"},
               {{"--chunks"}, true, "score at most this many chunks"},
               {{"--json"}, false, "print the result as one JSON object"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node perplexity -m MODEL -f FILE [-c N] [-b N] [-t N] [--json]\n%s", args.help().c_str());
        return 0;
    }
    if (!args.has("-f")) throw UsageError("no text file given (-f FILE)");
    const int64_t n_ctx = args.integer("-c", 512);
    if (n_ctx < 4) throw UsageError("-c must be at least 4");
    const int64_t n_batch = args.integer("-b", n_ctx);
    if (n_batch <= 0) throw UsageError("-b must be > 0");
    const std::string text = read_prompt(args);
    LoadedModel lm = load_model(args.str("-m"));
    const model::Vocab& vocab = lm.tokenizer->vocab();
    const std::vector<int32_t> tokens = lm.tokenizer->encode(text, true, false);
    int64_t n_chunk = int64_t(tokens.size()) / n_ctx;
    if (args.has("--chunks")) {
        const int64_t k = args.integer("--chunks", n_chunk);
        if (k <= 0) throw UsageError("--chunks must be > 0");
        n_chunk = std::min(n_chunk, k);
    }
    if (n_chunk <= 0)
        throw std::runtime_error(args.str("-f") + ": " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                                 std::to_string(n_ctx) + " (lower -c)");
    std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring the second half of each\n", tokens.size(),
                 (long long)n_chunk, (long long)n_ctx);

    tensor::ThreadPool pool(thread_count(args));
    engine::SessionConfig sc;
    sc.n_ctx = int(n_ctx);
    sc.n_batch = int(n_batch);
    engine::LocalSession session(lm.model, sc, pool);
    const int n_vocab = session.n_vocab();
    const int64_t first = n_ctx / 2;
    double nll = 0.0, nll2 = 0.0;
    int64_t count = 0;
    std::vector<float> logits;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t c = 0; c < n_chunk; ++c) {
        std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
        if (vocab.add_bos && vocab.bos_id >= 0) chunk[0] = vocab.bos_id;
        session.reset();
        session.eval(chunk, logits, true);
        for (int64_t j = first; j < n_ctx - 1; ++j) {
            const float* row = logits.data() + j * n_vocab;
            float mx = row[0];
            for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, row[i]);
            double sum = 0.0;
            for (int i = 0; i < n_vocab; ++i) sum += std::exp(double(row[i]) - mx);
            const double v = -(double(row[chunk[j + 1]]) - mx - std::log(sum));
            nll += v;
            nll2 += v * v;
            ++count;
        }
        std::fprintf(stderr, "[%lld]%.4f,", (long long)c + 1, std::exp(nll / double(count)));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\n%.2f s, %.1f tokens/s\n", secs, double(n_chunk * n_ctx) / secs);
    const double mean = nll / double(count);
    const double ppl = std::exp(mean);
    double var = nll2 / double(count) - mean * mean;
    const double err = var > 0 && count > 1 ? std::sqrt(var / double(count - 1)) * ppl : 0.0;
    if (args.has("--json")) {
        std::printf("{\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"chunks\":%lld,\"n_ctx\":%lld,\"scored_tokens\":%lld}\n", ppl, err,
                    (long long)n_chunk, (long long)n_ctx, (long long)count);
    } else {
        std::printf("PPL = %.4f +/- %.5f\n", ppl, err);
    }
    return 0;
}

}  // namespace llmn::cli
