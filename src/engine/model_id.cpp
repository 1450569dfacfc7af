#include "engine/model_id.h"

#include <sodium.h>

#include <string_view>

#include "engine/model.h"

namespace llmn::engine {

namespace {
constexpr std::string_view kIdLabel = "llm-node/v2 model id";
}

ModelId model_id(const model::TensorDigests& digests) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, 32);
    auto add = [&](const void* p, size_t n) {
        crypto_generichash_update(&st, static_cast<const unsigned char*>(p), n);
    };
    add(kIdLabel.data(), kIdLabel.size());
    add(digests.header.data(), digests.header.size());
    uint8_t count[8];
    for (int i = 0; i < 8; ++i) count[i] = uint8_t(uint64_t(digests.tensors.size()) >> (8 * i));
    add(count, sizeof count);
    for (const auto& t : digests.tensors) add(t.digest.data(), t.digest.size());
    ModelId out{};
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

std::shared_ptr<const model::TensorDigests> tensor_digests(const Model& model) {
    return model::tensor_digests(model.file());
}

ModelId model_id(const Model& model) { return model_id(*tensor_digests(model)); }

}  // namespace llmn::engine
