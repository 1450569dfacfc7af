// The model id: what "the same model" means on the wire (OPEN_SESSION, onion
// layers, NODE_INFO, DHT swarm and records). Two files have the same id only
// when their metadata, tensor index and tensor data are the same.
//
// The id is BLAKE2b-256 over the domain label "llm-node/v2 model id", the digest
// of the header (metadata + tensor index, so tensor names, shapes, types and
// order), the tensor count (u64, little-endian) and the digest of each tensor's
// data bytes in tensor-index order (model/tensor_digests.h). Padding between and
// after the tensors is not covered; every byte a computation reads is. The
// per-tensor digests are computed once per file and cached beside it, so only the
// first start on a file reads all of it.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "model/tensor_digests.h"

namespace llmn::engine {

class Model;

using ModelId = std::array<uint8_t, 32>;

// The id of `model`'s file. Throws model::GgufError when the file cannot be read.
ModelId model_id(const Model& model);

// The id that a header digest and a list of per-tensor digests stand for: a peer
// that receives digests can check them against an id it trusts before it
// checks tensor data against them.
ModelId model_id(const model::TensorDigests& digests);

// The per-tensor digests of `model`'s file (memoized in the process, cached on disk).
std::shared_ptr<const model::TensorDigests> tensor_digests(const Model& model);

}  // namespace llmn::engine
