#include "net/wire_hidden.h"

#include <cstring>
#include <string>

#include "tensor/fp16.h"

namespace llmn::net {

std::vector<uint8_t> pack_hidden(const float* x, size_t count, WireDType dtype) {
    std::vector<uint8_t> out;
    if (dtype == WireDType::f32) {
        out.resize(count * 4);
        std::memcpy(out.data(), x, out.size());
    } else {
        out.resize(count * 2);
        for (size_t i = 0; i < count; ++i) {
            const uint16_t h = tensor::f32_to_fp16(x[i]);
            std::memcpy(out.data() + 2 * i, &h, 2);
        }
    }
    return out;
}

void unpack_hidden(const std::vector<uint8_t>& bytes, uint8_t dtype, size_t count, float* out) {
    if (dtype == uint8_t(WireDType::f32)) {
        if (bytes.size() != count * 4)
            throw NetError(Errc::bad_message, "hidden states of " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(count * 4));
        std::memcpy(out, bytes.data(), bytes.size());
    } else if (dtype == uint8_t(WireDType::f16)) {
        if (bytes.size() != count * 2)
            throw NetError(Errc::bad_message, "hidden states of " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(count * 2));
        for (size_t i = 0; i < count; ++i) {
            uint16_t h;
            std::memcpy(&h, bytes.data() + 2 * i, 2);
            out[i] = tensor::fp16_to_f32(h);
        }
    } else {
        throw NetError(Errc::bad_message, "unknown hidden-state dtype " + std::to_string(dtype));
    }
}

}  // namespace llmn::net
