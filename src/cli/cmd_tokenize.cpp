// llm-node tokenize: the token ids (and pieces) of a text, as llama-tokenize prints them.
#include <cstdio>

#include "cli/commands.h"
#include "model/model_store.h"

namespace llmn::cli {

int cmd_tokenize(int argc, char** argv) {
    Args args(argc, argv, 2,
              {{{"-m", "--model"}, true, "GGUF model file (only its tokenizer is read)"},
               {{"-p", "--prompt"}, true, "text to tokenize (verbatim)"},
               {{"-f", "--file"}, true, "read the text from a file"},
               {{"--no-bos"}, false, "do not add BOS/EOS special tokens"},
               {{"--no-parse-special"}, false, "treat special-token text as plain text"},
               {{"--json"}, false, "print the ids as one JSON array"},
               {{"--help", "-h"}, false, "show this help"}});
    if (args.has("--help")) {
        std::printf("usage: llm-node tokenize -m MODEL (-p TEXT | -f FILE) [options]\n%s", args.help().c_str());
        return 0;
    }
    const std::string text = read_prompt(args);
    const std::string path = args.str("-m");
    if (path.empty()) throw UsageError("no model given (-m MODEL.gguf)");
    auto file = model::GgufFile::open(model::resolve_model(path));
    auto tok = model::Tokenizer::create(model::Vocab::from_gguf(*file));
    const std::vector<int32_t> ids = tok->encode(text, !args.has("--no-bos"), !args.has("--no-parse-special"));
    if (args.has("--json")) {
        std::string out = "[";
        for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
        std::printf("%s]\n", out.c_str());
    } else {
        for (int32_t id : ids) std::printf("%6d -> %s\n", id, json_string(tok->token_to_piece(id, true)).c_str());
    }
    return 0;
}

}  // namespace llmn::cli
