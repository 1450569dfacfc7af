// The manifest of a model shared through the swarm: the file's size, the size of
// its header (metadata + tensor index) and the digests that make up its model id
// (model/tensor_digests.h, engine::model_id). It travels as the second file of the
// model's torrent. A fetcher checks it against the model id it asked for (so the
// torrent cannot be another model), checks the header against it, and checks each
// tensor it downloads against it before anything reads the tensor.
//
// Encoding (all integers little-endian, deterministic, so every node that shares
// one model makes byte-identical torrents):
//   "llm-node manifest 1\n"  file_size u64  header_size u64  header digest [32]
//   tensor count u32, then per tensor: name length u32, name bytes, digest [32]
#pragma once
#include <cstdint>
#include <string>

#include "model/tensor_digests.h"

namespace llmn::model {

class GgufFile;

struct WeightsManifest {
    uint64_t file_size = 0;
    uint64_t header_size = 0;  // bytes of GgufFile::header_bytes()
    TensorDigests digests;
};

inline constexpr uint32_t kMaxManifestTensors = 1u << 20;
inline constexpr uint32_t kMaxManifestName = 4096;

// The manifest of a complete local file (hashes it the first time; tensor_digests caches).
WeightsManifest make_manifest(const GgufFile& file);

std::string serialize_manifest(const WeightsManifest& m);

// Throws GgufError on anything malformed: magic, lengths past the end, too many
// tensors, names too long or empty, trailing bytes.
WeightsManifest parse_manifest(const std::string& bytes);

}  // namespace llmn::model
