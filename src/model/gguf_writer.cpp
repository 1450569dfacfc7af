#include "model/gguf_writer.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace llmn::model {

namespace {

constexpr uint32_t gguf_version = 3;
constexpr size_t max_key_len = 65535;
constexpr size_t max_tensor_name_len = 63;  // llama.cpp's GGML_MAX_NAME (64) minus the terminator
constexpr size_t max_dims = 4;

// Appends `v` in little-endian byte order whatever the host order is.
template <class T>
void put_le(std::vector<uint8_t>& out, T v) {
    using U = std::conditional_t<sizeof(T) == 1, uint8_t,
              std::conditional_t<sizeof(T) == 2, uint16_t,
              std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
    U u = std::bit_cast<U>(v);
    for (size_t i = 0; i < sizeof(U); ++i) out.push_back(uint8_t(u >> (8 * i)));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put_le<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

template <class T>
std::vector<uint8_t> encode(T v) {
    std::vector<uint8_t> out;
    put_le(out, v);
    return out;
}

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("gguf writer: " + what); }

}  // namespace

void GgufWriter::put(std::string key, GgufType type, std::vector<uint8_t> value) {
    if (key.empty()) fail("empty metadata key");
    if (key.size() > max_key_len) fail("metadata key of " + std::to_string(key.size()) + " bytes exceeds 65535");
    if (key == "general.alignment") {
        if (type != GgufType::u32)
            fail("general.alignment must be a u32, not " + std::string(gguf_type_name(type)));
        uint32_t a = uint32_t(value[0]) | uint32_t(value[1]) << 8 | uint32_t(value[2]) << 16 | uint32_t(value[3]) << 24;
        if (a == 0 || (a & (a - 1)) != 0) fail("general.alignment " + std::to_string(a) + " is not a power of two");
        alignment_ = a;
    }
    if (auto it = kv_index_.find(key); it != kv_index_.end()) {
        kv_[it->second].type = type;
        kv_[it->second].value = std::move(value);
        return;
    }
    kv_index_.emplace(key, kv_.size());
    kv_.push_back({std::move(key), type, std::move(value)});
}

bool GgufWriter::has_key(std::string_view key) const { return kv_index_.count(std::string(key)) != 0; }

void GgufWriter::set_u8(std::string key, uint8_t v) { put(std::move(key), GgufType::u8, encode(v)); }
void GgufWriter::set_i8(std::string key, int8_t v) { put(std::move(key), GgufType::i8, encode(v)); }
void GgufWriter::set_u16(std::string key, uint16_t v) { put(std::move(key), GgufType::u16, encode(v)); }
void GgufWriter::set_i16(std::string key, int16_t v) { put(std::move(key), GgufType::i16, encode(v)); }
void GgufWriter::set_u32(std::string key, uint32_t v) { put(std::move(key), GgufType::u32, encode(v)); }
void GgufWriter::set_i32(std::string key, int32_t v) { put(std::move(key), GgufType::i32, encode(v)); }
void GgufWriter::set_u64(std::string key, uint64_t v) { put(std::move(key), GgufType::u64, encode(v)); }
void GgufWriter::set_i64(std::string key, int64_t v) { put(std::move(key), GgufType::i64, encode(v)); }
void GgufWriter::set_f32(std::string key, float v) { put(std::move(key), GgufType::f32, encode(v)); }
void GgufWriter::set_f64(std::string key, double v) { put(std::move(key), GgufType::f64, encode(v)); }
void GgufWriter::set_bool(std::string key, bool v) { put(std::move(key), GgufType::boolean, encode(uint8_t(v ? 1 : 0))); }

void GgufWriter::set_string(std::string key, std::string_view v) {
    std::vector<uint8_t> out;
    put_string(out, v);
    put(std::move(key), GgufType::string, std::move(out));
}

template <class T>
void GgufWriter::put_array(std::string key, GgufType elem, const std::vector<T>& v) {
    std::vector<uint8_t> out;
    put_le<uint32_t>(out, uint32_t(elem));
    put_le<uint64_t>(out, v.size());
    for (const auto& x : v) {
        if constexpr (std::is_same_v<T, std::string>) put_string(out, x);
        else if constexpr (std::is_same_v<T, bool>) out.push_back(x ? 1 : 0);
        else put_le<T>(out, x);
    }
    put(std::move(key), GgufType::array, std::move(out));
}

void GgufWriter::set_array_strings(std::string key, const std::vector<std::string>& v) {
    put_array(std::move(key), GgufType::string, v);
}
void GgufWriter::set_array_u8(std::string key, const std::vector<uint8_t>& v) { put_array(std::move(key), GgufType::u8, v); }
void GgufWriter::set_array_i8(std::string key, const std::vector<int8_t>& v) { put_array(std::move(key), GgufType::i8, v); }
void GgufWriter::set_array_u16(std::string key, const std::vector<uint16_t>& v) { put_array(std::move(key), GgufType::u16, v); }
void GgufWriter::set_array_i16(std::string key, const std::vector<int16_t>& v) { put_array(std::move(key), GgufType::i16, v); }
void GgufWriter::set_array_u32(std::string key, const std::vector<uint32_t>& v) { put_array(std::move(key), GgufType::u32, v); }
void GgufWriter::set_array_i32(std::string key, const std::vector<int32_t>& v) { put_array(std::move(key), GgufType::i32, v); }
void GgufWriter::set_array_u64(std::string key, const std::vector<uint64_t>& v) { put_array(std::move(key), GgufType::u64, v); }
void GgufWriter::set_array_i64(std::string key, const std::vector<int64_t>& v) { put_array(std::move(key), GgufType::i64, v); }
void GgufWriter::set_array_f32(std::string key, const std::vector<float>& v) { put_array(std::move(key), GgufType::f32, v); }
void GgufWriter::set_array_f64(std::string key, const std::vector<double>& v) { put_array(std::move(key), GgufType::f64, v); }
void GgufWriter::set_array_bool(std::string key, const std::vector<bool>& v) {
    put_array(std::move(key), GgufType::boolean, v);
}

void GgufWriter::add_tensor(std::string name, tensor::DType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
    if (name.empty()) fail("empty tensor name");
    if (name.size() > max_tensor_name_len)
        fail("tensor name '" + name + "' is " + std::to_string(name.size()) + " bytes (at most " +
             std::to_string(max_tensor_name_len) + ")");
    if (tensor_index_.count(name)) fail("duplicate tensor name '" + name + "'");
    if (ne.empty() || ne.size() > max_dims)
        fail("tensor '" + name + "' has " + std::to_string(ne.size()) + " dimensions (1..4)");
    const tensor::DTypeInfo* info = tensor::dtype_info(uint32_t(type));
    if (!info) fail("tensor '" + name + "' has unknown type id " + std::to_string(uint32_t(type)));

    uint64_t rows = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
        if (ne[d] < 1) fail("tensor '" + name + "' dimension " + std::to_string(d) + " is " + std::to_string(ne[d]));
        if (d > 0) {
            if (rows > std::numeric_limits<uint64_t>::max() / uint64_t(ne[d]))
                fail("tensor '" + name + "' has too many elements");
            rows *= uint64_t(ne[d]);
        }
    }
    if (ne[0] % int64_t(info->block_size) != 0)
        fail("tensor '" + name + "' row of " + std::to_string(ne[0]) + " elements is not a multiple of " +
             std::string(info->name) + "'s block size " + std::to_string(info->block_size));
    uint64_t row = tensor::row_bytes(type, ne[0]);
    if (row != 0 && rows > std::numeric_limits<uint64_t>::max() / row) fail("tensor '" + name + "' is too large");
    if (uint64_t(data.size()) != row * rows)
        fail("tensor '" + name + "' (" + std::string(info->name) + ") needs " + std::to_string(row * rows) +
             " bytes of data, got " + std::to_string(data.size()));

    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back({std::move(name), type, std::move(ne), std::move(data)});
}

std::vector<uint8_t> GgufWriter::header_bytes() const {
    std::vector<uint8_t> out;
    out.insert(out.end(), {'G', 'G', 'U', 'F'});
    put_le<uint32_t>(out, gguf_version);
    put_le<uint64_t>(out, tensors_.size());
    put_le<uint64_t>(out, kv_.size());
    for (const Kv& kv : kv_) {
        put_string(out, kv.key);
        put_le<uint32_t>(out, uint32_t(kv.type));
        out.insert(out.end(), kv.value.begin(), kv.value.end());
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
        put_string(out, t.name);
        put_le<uint32_t>(out, uint32_t(t.ne.size()));
        for (int64_t d : t.ne) put_le<uint64_t>(out, uint64_t(d));
        put_le<uint32_t>(out, uint32_t(t.type));
        put_le<uint64_t>(out, offset);
        offset += t.data.size() + pad_after(t.data.size());
    }
    // A file without tensors ends right after the metadata, as the vocab-only
    // files from llama.cpp's tools do; otherwise the data section is aligned.
    if (!tensors_.empty()) out.resize(out.size() + pad_after(out.size()), 0);
    return out;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
    std::vector<uint8_t> out = header_bytes();
    for (const Tensor& t : tensors_) {
        out.insert(out.end(), t.data.begin(), t.data.end());
        out.resize(out.size() + pad_after(t.data.size()), 0);
    }
    return out;
}

void GgufWriter::write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    auto io_fail = [&](const std::string& what) {
        int err = errno;
        std::remove(tmp.c_str());
        throw std::runtime_error("gguf writer: cannot " + what + " '" + path + "': " + std::strerror(err));
    };
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) io_fail("create a temporary file for");
    auto put_bytes = [&](const uint8_t* p, size_t n) {
        if (n != 0 && std::fwrite(p, 1, n, f) != n) {
            std::fclose(f);
            io_fail("write");
        }
    };
    const std::vector<uint8_t> zeros(alignment_, 0);
    std::vector<uint8_t> header = header_bytes();
    put_bytes(header.data(), header.size());
    for (const Tensor& t : tensors_) {
        put_bytes(t.data.data(), t.data.size());
        put_bytes(zeros.data(), pad_after(t.data.size()));
    }
    if (std::fclose(f) != 0) io_fail("finish writing");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw std::runtime_error("gguf writer: cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
    }
}

}  // namespace llmn::model
