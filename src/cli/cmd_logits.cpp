// llm-node logits: top raw logits of a token sequence evaluated as one batch,
// one JSON line per position (teacher-forced comparison with other engines).
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "cli/commands.h"
#include "engine/local_session.h"
#include "tensor/thread_pool.h"

namespace llmn::cli {

static std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        const std::string tok = s.substr(i, j - i);
        char* end = nullptr;
        long v = std::strtol(tok.c_str(), &end, 10);
        if (tok.empty() || *end != '\0' || v < 0 || v > INT32_MAX) throw UsageError("--ids: '" + tok + "' is not a token id");
        ids.push_back(int32_t(v));
        i = j + 1;
    }
    return ids;
}

int cmd_logits(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file"},
               {{"-p", "--prompt"}, true, "text (tokenized with BOS and special tokens)"},
               {{"-f", "--file"}, true, "read the text from a file"},
               {{"--ids"}, true, "comma-separated token ids instead of text"},
               {{"--top"}, true, "logits per position (default 10)"},
               {{"--all"}, false, "every position, not only the last"},
               {{"-t", "--threads"}, true, "threads (default: all cores)"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node logits -m MODEL (-p TEXT | --ids 1,2,3) [--top K] [--all]\n%s", args.help().c_str());
        return 0;
    }
    const int64_t top = args.integer("--top", 10);
    if (top <= 0) throw UsageError("--top must be > 0");
    LoadedModel lm = load_model(args.str("-m"));
    std::vector<int32_t> ids = args.has("--ids") ? parse_ids(args.str("--ids")) : lm.tokenizer->encode(read_prompt(args), true, true);
    if (ids.empty()) throw UsageError("no tokens to evaluate");
    const bool all = args.has("--all");
    tensor::ThreadPool pool(thread_count(args));
    engine::SessionConfig sc;
    sc.n_ctx = int(ids.size());
    sc.n_batch = int(ids.size());
    engine::LocalSession session(lm.model, sc, pool);
    std::vector<float> logits;
    session.eval(ids, logits, all);
    const int n_vocab = session.n_vocab();
    const int k = int(std::min<int64_t>(top, n_vocab));
    std::vector<int32_t> order(n_vocab);
    const int first = all ? 0 : int(ids.size()) - 1;
    for (int pos = first; pos < int(ids.size()); ++pos) {
        const float* row = logits.data() + (all ? size_t(pos) * n_vocab : 0);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
        std::string line = "{\"pos\":" + std::to_string(pos) + ",\"top\":[";
        char buf[64];
        for (int i = 0; i < k; ++i) {
            std::snprintf(buf, sizeof buf, "%s[%d,%.6f]", i ? "," : "", order[i], row[order[i]]);
            line += buf;
        }
        line += "]}\n";
        std::fputs(line.c_str(), stdout);
    }
    return 0;
}

}  // namespace llmn::cli
