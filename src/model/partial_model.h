// A GGUF file fetched in part from the swarm (swarm/weights.h): the file has its
// full size, but only some tensors hold their bytes (the rest is a sparse hole).
// Beside it:
//   MODEL.gguf.llmn-manifest  the model's manifest (model/weights_manifest.h),
//                             written once its header has been checked;
//   MODEL.gguf.llmn-verified  the names of the tensors whose bytes matched the
//                             manifest's digests, one per line.
// Nothing may compute with a tensor of a partial file that is not on the verified
// list: require_verified() is called where spans and stages are built
// (engine::SpanWeights, EmbeddingStage, HeadStage), and the model id of a partial
// file is its manifest's (tensor_digests() does not hash the holes).
#pragma once
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/weights_manifest.h"

namespace llmn::model {

class GgufFile;

std::string partial_manifest_path(const std::string& gguf_path);
std::string partial_verified_path(const std::string& gguf_path);

// True when `gguf_path` was fetched from the swarm (its manifest is beside it).
bool is_partial(const std::string& gguf_path);

struct PartialState {
    WeightsManifest manifest;
    std::set<std::string> verified;
};

// The manifest and the verified list; nullopt for a file that is not partial.
// Throws GgufError when the manifest beside it is corrupt.
std::optional<PartialState> read_partial(const std::string& gguf_path);

// Writes the manifest beside the file (atomically). A different manifest than the
// one there also clears the verified list.
void write_partial_manifest(const std::string& gguf_path, const WeightsManifest& m);

// Hashes each named tensor of `file` and compares it with the manifest; the ones
// that match are added to the verified list. Returns the names that did not match
// (or are missing from the file or the manifest).
std::vector<std::string> verify_tensors(const GgufFile& file, const WeightsManifest& m,
                                        const std::vector<std::string>& names);

// The tensors a node serving layers [a, b) reads: blk.a .. blk.(b-1) and the
// tensors outside the blocks other than the client's (rope_freqs and the like).
// With `with_stages` also the client's: token_embd, output_norm, output.
// a == b gives the non-block tensors only.
std::vector<std::string> tensors_needed(const GgufFile& file, int a, int b, bool with_stages);

// Throws GgufError naming the first tensor that a partial `file` has not verified.
// Does nothing for a complete file.
void require_verified(const GgufFile& file, const std::vector<std::string>& names);

// The digests of a partial file, from its manifest, after checking that the
// file's header and tensor index are the manifest's; nullptr for a complete file.
std::shared_ptr<const TensorDigests> partial_digests(const GgufFile& file);

}  // namespace llmn::model
