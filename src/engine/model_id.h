// The model id: what "the same model" means on the wire (OPEN_SESSION, onion
// layers, NODE_INFO, DHT swarm and records). Two files have the same id only
// when their metadata, tensor index and tensor data are the same.
#pragma once
#include <array>
#include <cstdint>

namespace llmn::engine {

class Model;

using ModelId = std::array<uint8_t, 32>;

// The id of `model`'s file.
ModelId model_id(const Model& model);

}  // namespace llmn::engine
