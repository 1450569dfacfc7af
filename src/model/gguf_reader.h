// GGUF v2/v3 reader over a memory-mapped file (or an in-memory buffer).
//
// Every length, count and offset read from the file is checked against the bytes
// that remain before anything is allocated; a malformed file throws GgufError whose
// message names the file, the byte offset and what was wrong. Tensor data is never
// copied: TensorInfo::data points into the mapping, so touching only the tensors of
// one layer span keeps the rest of the file off the resident set.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/dtype.h"

namespace llmn::model {

class GgufError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// GGUF metadata value types (frozen by the format).
enum class GgufType : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars fill the matching field (integers are also
// mirrored into `f` and `i` for convenience); arrays fill `elem_type` and
// either `strings` or `numbers` (integers and bools as doubles).
struct GgufValue {
    GgufType type = GgufType::u8;
    GgufType elem_type = GgufType::u8;
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0.0;
    bool b = false;
    std::string_view str;                   // points into the file's bytes
    std::vector<std::string_view> strings;  // array of strings
    std::vector<double> numbers;            // array of numbers or bools
    uint64_t array_len() const { return type == GgufType::array ? (elem_type == GgufType::string ? strings.size() : numbers.size()) : 0; }
};

struct TensorInfo {
    std::string name;
    std::vector<int64_t> ne;  // dims, innermost first (ne[0] = row length)
    tensor::DType type = tensor::DType::f32;
    uint64_t offset = 0;      // absolute byte offset in the file
    uint64_t nbytes = 0;
    const uint8_t* data = nullptr;
    int64_t n_elements() const;
    int64_t n_rows() const { return ne.empty() ? 0 : n_elements() / ne[0]; }
};

class GgufFile {
public:
    // Maps and parses `path`. Throws GgufError on any I/O error or malformed content.
    static std::shared_ptr<const GgufFile> open(const std::string& path);
    // Parses a copy of `bytes`; `name` stands for the file in error messages.
    static std::shared_ptr<const GgufFile> parse(std::vector<uint8_t> bytes, const std::string& name = "<memory>");

    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t file_size() const { return size_; }
    uint64_t data_offset() const { return data_offset_; }
    const uint8_t* bytes() const { return base_; }

    // Metadata in file order, and lookup by key (nullptr when absent).
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(std::string_view key) const;
    // Typed getters: absent key returns `fallback`; a present key of the wrong
    // kind throws GgufError naming the key.
    std::string get_string(std::string_view key, std::string_view fallback = {}) const;
    int64_t get_int(std::string_view key, int64_t fallback) const;
    double get_float(std::string_view key, double fallback) const;
    bool get_bool(std::string_view key, bool fallback) const;
    // Required variants throw GgufError when the key is missing.
    int64_t require_int(std::string_view key) const;
    double require_float(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* tensor(std::string_view name) const;

    // Byte range [header start, data section start): metadata + tensor index.
    // The model id digest is computed over it.
    std::string_view header_bytes() const;

private:
    GgufFile() = default;
    void parse_all();

    std::string path_;
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    void* map_ = nullptr;            // mmap'd region (unmapped in the destructor)
    std::vector<uint8_t> owned_;     // used by parse()
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace llmn::model
