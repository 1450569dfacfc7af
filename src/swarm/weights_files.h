// File helpers of the weights cache (swarm/weights.cpp): whole-file reads with
// a size limit, and writes that a reader never sees half done.
#pragma once
#include <cstdint>
#include <string>

namespace llmn::swarm {

// Throws FetchError when the file cannot be read or is larger than `limit`.
std::string read_file(const std::string& path, uint64_t limit);
// The first n bytes; throws FetchError when the file is shorter.
std::string read_prefix(const std::string& path, uint64_t n);
// Written to a temporary name and renamed over `path`.
void write_file(const std::string& path, const std::string& bytes);

}  // namespace llmn::swarm
