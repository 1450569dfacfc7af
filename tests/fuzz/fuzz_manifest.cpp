// The manifest of a model's torrent (model/weights_manifest.h) comes from any
// peer of the swarm: parse arbitrary bytes, and re-encode whatever parses to
// the same bytes (the encoding is canonical, so torrents of one model agree).
#include "model/gguf_reader.h"
#include "model/weights_manifest.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    model::WeightsManifest m;
    try {
        m = model::parse_manifest(bytes);
    } catch (const model::GgufError&) {
        return 0;
    }
    if (model::serialize_manifest(m) != bytes) __builtin_trap();
    return 0;
}
