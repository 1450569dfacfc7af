// GGUF v3 writer: builds a file from metadata and tensors held in memory.
//
// The output follows the GGUF specification byte for byte, all little-endian:
// the magic "GGUF", version u32 3, tensor count u64, metadata count u64; each
// metadata pair as key (u64 length + bytes), value type u32 and value (arrays:
// element type u32, count u64, elements); each tensor info as name, dimension
// count u32, dimensions u64 (innermost first), type u32 and an offset u64
// relative to the data section; zero padding up to general.alignment (32 unless
// set); then the tensor data in add order, each tensor starting on an aligned
// offset and followed by zero padding up to the next multiple of the alignment
// (as ggml's gguf writer does, the last tensor is padded too). A file without
// tensors ends right after its metadata, with no padding, like the vocab-only
// files llama.cpp's tools write.
//
// Metadata is written in the order keys were first set; setting a key again
// replaces its value in place. Every input is checked when it is given, and a
// bad one throws std::invalid_argument naming the key or tensor, so that the
// file written is always one that GgufFile (and llama.cpp) accepts.
// The writer keeps all tensor bytes in memory: it is meant for tools, test
// fixtures and small models, not for streaming multi-gigabyte conversions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/gguf_reader.h"
#include "tensor/dtype.h"

namespace llmn::model {

class GgufWriter {
public:
    // Scalars. Keys must be non-empty and at most 65535 bytes.
    // "general.alignment" may only be set with set_u32, to a non-zero power of two.
    void set_u8(std::string key, uint8_t v);
    void set_i8(std::string key, int8_t v);
    void set_u16(std::string key, uint16_t v);
    void set_i16(std::string key, int16_t v);
    void set_u32(std::string key, uint32_t v);
    void set_i32(std::string key, int32_t v);
    void set_u64(std::string key, uint64_t v);
    void set_i64(std::string key, int64_t v);
    void set_f32(std::string key, float v);
    void set_f64(std::string key, double v);
    void set_bool(std::string key, bool v);
    void set_string(std::string key, std::string_view v);

    // Arrays of one element type (nested arrays are not supported).
    void set_array_strings(std::string key, const std::vector<std::string>& v);
    void set_array_u8(std::string key, const std::vector<uint8_t>& v);
    void set_array_i8(std::string key, const std::vector<int8_t>& v);
    void set_array_u16(std::string key, const std::vector<uint16_t>& v);
    void set_array_i16(std::string key, const std::vector<int16_t>& v);
    void set_array_u32(std::string key, const std::vector<uint32_t>& v);
    void set_array_i32(std::string key, const std::vector<int32_t>& v);
    void set_array_u64(std::string key, const std::vector<uint64_t>& v);
    void set_array_i64(std::string key, const std::vector<int64_t>& v);
    void set_array_f32(std::string key, const std::vector<float>& v);
    void set_array_f64(std::string key, const std::vector<double>& v);
    void set_array_bool(std::string key, const std::vector<bool>& v);

    // Adds a tensor; `ne` lists its dimensions innermost first (ne[0] is the
    // row length) and `data` holds its raw bytes in GGUF layout. Throws
    // std::invalid_argument when the name is empty, 64 bytes or longer (llama.cpp's
    // GGML_MAX_NAME) or already added; when there are not 1 to 4 dimensions or
    // one is below 1; when ne[0] is not a multiple of the type's block size; or
    // when data.size() differs from tensor::row_bytes(type, ne[0]) times the
    // number of rows (ne[1] * ne[2] * ne[3]).
    void add_tensor(std::string name, tensor::DType type, std::vector<int64_t> ne, std::vector<uint8_t> data);

    size_t n_kv() const { return kv_.size(); }
    size_t n_tensors() const { return tensors_.size(); }
    bool has_key(std::string_view key) const;
    // The data alignment in bytes: general.alignment when set, else 32.
    uint64_t alignment() const { return alignment_; }

    // The whole file as bytes.
    std::vector<uint8_t> to_bytes() const;
    // Writes the file to `path` (through a temporary file beside it that is
    // renamed into place). Throws std::runtime_error naming the path when the
    // file cannot be written.
    void write(const std::string& path) const;

private:
    struct Kv {
        std::string key;
        GgufType type;
        std::vector<uint8_t> value;  // encoded value bytes after the type id
    };
    struct Tensor {
        std::string name;
        tensor::DType type;
        std::vector<int64_t> ne;
        std::vector<uint8_t> data;
    };

    void put(std::string key, GgufType type, std::vector<uint8_t> value);
    template <class T>
    void put_array(std::string key, GgufType elem, const std::vector<T>& v);
    // Everything before the data section, padding included.
    std::vector<uint8_t> header_bytes() const;
    // Padding that follows `n` bytes to reach the alignment.
    uint64_t pad_after(uint64_t n) const { return (alignment_ - n % alignment_) % alignment_; }

    std::vector<Kv> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
    uint64_t alignment_ = 32;
};

}  // namespace llmn::model
