#include "engine/model_id.h"

#include <sodium.h>

#include "engine/model.h"

namespace llmn::engine {

ModelId model_id(const Model& model) {
    const std::string_view h = model.file().header_bytes();
    ModelId out{};
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(h.data()), h.size(), nullptr, 0);
    return out;
}

}  // namespace llmn::engine
