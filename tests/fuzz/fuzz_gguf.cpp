// GGUF reader: header, metadata and tensor index from arbitrary bytes (through
// the mmap path of a memfd), then everything read from them: the engine's model
// config and tensor shape checks, the listing summary, the vocab and a tokenizer.
#include <sys/mman.h>
#include <unistd.h>

#include "engine/model.h"
#include "model/model_summary.h"
#include "model/tokenizer.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const int fd = memfd_create("fuzz.gguf", 0);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != ssize_t(size)) __builtin_trap();
    std::shared_ptr<const model::GgufFile> f;
    try {
        f = model::GgufFile::open(path);
    } catch (const model::GgufError&) {
        return 0;
    }
    for (const model::TensorInfo& t : f->tensors())  // every tensor lies inside the file
        if (t.offset > f->file_size() || t.nbytes > f->file_size() - t.offset || t.data != f->bytes() + t.offset) __builtin_trap();
    try {
        (void)model::summarize_model(*f);
    } catch (const model::GgufError&) {}
    try {
        auto m = engine::Model::load(path);
        (void)m->token_embd(), (void)m->output_norm(), (void)m->output(), (void)m->rope_freqs();
        (void)m->weight_bytes(), (void)m->n_params();
        for (int il = 0; il < m->config().n_layer && il < 4; ++il) (void)m->layer(il);
    } catch (const engine::ModelError&) {
    } catch (const model::ArchError&) {
    } catch (const model::GgufError&) {}
    try {
        auto tok = model::Tokenizer::create(model::Vocab::from_gguf(*f));
        for (int32_t id : tok->encode("Hello <s> world<|im_end|>", true, true)) (void)tok->token_to_piece(id, true);
    } catch (const model::TokenizerError&) {
    } catch (const model::GgufError&) {}
    return 0;
}
