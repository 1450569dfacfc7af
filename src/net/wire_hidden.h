// Hidden states on the wire: [n_tokens, n_embd] floats as f32 or f16 bytes.
#pragma once
#include <cstdint>
#include <vector>

#include "net/messages.h"

namespace llmn::net {

std::vector<uint8_t> pack_hidden(const float* x, size_t count, WireDType dtype);
// Throws NetError(bad_message) when the byte count is not count elements of dtype.
void unpack_hidden(const std::vector<uint8_t>& bytes, uint8_t dtype, size_t count, float* out);

}  // namespace llmn::net
