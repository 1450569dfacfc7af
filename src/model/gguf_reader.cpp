#include "model/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace llmn::model {
namespace {

// Bounds that reject absurd headers before anything is allocated.
constexpr uint64_t kMaxKeyOrNameLen = 1 << 16;
constexpr uint64_t kMaxDims = 4;
constexpr uint32_t kMaxArrayNesting = 1;

std::string fmt_offset(uint64_t off) { return "offset " + std::to_string(off); }

// Sequential little-endian reader that checks every read against the buffer end.
class Cursor {
public:
    Cursor(const uint8_t* base, uint64_t size, const std::string& name) : base_(base), size_(size), name_(name) {}

    [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
    [[noreturn]] void fail_at(uint64_t at, const std::string& what) const {
        throw GgufError(name_ + ": " + what + " at " + fmt_offset(at));
    }

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    void need(uint64_t n, const char* what) const {
        if (n > remaining())
            fail(std::string("truncated file: ") + what + " needs " + std::to_string(n) + " bytes, " +
                 std::to_string(remaining()) + " remain");
    }
    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));  // GGUF is little-endian, as is every host we build for
        pos_ += sizeof(T);
        return v;
    }
    std::string_view read_string(const char* what) {
        uint64_t start = pos_;
        uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            fail_at(start, std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                               std::to_string(remaining()) + " bytes left in the file");
        std::string_view s(reinterpret_cast<const char*>(base_ + pos_), len);
        pos_ += len;
        return s;
    }
    void skip(uint64_t n, const char* what) {
        need(n, what);
        pos_ += n;
    }

private:
    const uint8_t* base_;
    uint64_t size_;
    const std::string& name_;
    uint64_t pos_ = 0;
};

uint64_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
        case GgufType::u16: case GgufType::i16: return 2;
        case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
        case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
        default: return 0;
    }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::f64); }

// The integer mirror of a float value: truncated, NaN as 0, out-of-range values
// clamped (a plain cast is undefined behaviour for those).
int64_t float_to_i64(double f) {
    if (f != f) return 0;
    if (f >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
    if (f <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
    return int64_t(f);
}

// Reads one scalar of type t into v (numbers mirrored into i, u, f).
void read_scalar(Cursor& c, GgufType t, GgufValue& v) {
    switch (t) {
        case GgufType::u8: v.u = c.read<uint8_t>("u8 value"); v.i = int64_t(v.u); v.f = double(v.u); break;
        case GgufType::i8: v.i = c.read<int8_t>("i8 value"); v.u = uint64_t(v.i); v.f = double(v.i); break;
        case GgufType::u16: v.u = c.read<uint16_t>("u16 value"); v.i = int64_t(v.u); v.f = double(v.u); break;
        case GgufType::i16: v.i = c.read<int16_t>("i16 value"); v.u = uint64_t(v.i); v.f = double(v.i); break;
        case GgufType::u32: v.u = c.read<uint32_t>("u32 value"); v.i = int64_t(v.u); v.f = double(v.u); break;
        case GgufType::i32: v.i = c.read<int32_t>("i32 value"); v.u = uint64_t(v.i); v.f = double(v.i); break;
        case GgufType::u64: v.u = c.read<uint64_t>("u64 value"); v.i = int64_t(v.u); v.f = double(v.u); break;
        case GgufType::i64: v.i = c.read<int64_t>("i64 value"); v.u = uint64_t(v.i); v.f = double(v.i); break;
        case GgufType::f32: v.f = c.read<float>("f32 value"); v.i = float_to_i64(v.f); break;
        case GgufType::f64: v.f = c.read<double>("f64 value"); v.i = float_to_i64(v.f); break;
        case GgufType::boolean: {
            uint8_t b = c.read<uint8_t>("bool value");
            if (b > 1) c.fail_at(c.pos() - 1, "bool value " + std::to_string(b) + " is neither 0 nor 1");
            v.b = b != 0; v.i = b; v.u = b; v.f = b;
            break;
        }
        default: c.fail("internal: not a scalar type");
    }
}

GgufValue read_value(Cursor& c, GgufType t, uint32_t depth) {
    GgufValue v;
    v.type = t;
    if (t == GgufType::string) {
        v.str = c.read_string("string value");
        return v;
    }
    if (t != GgufType::array) {
        read_scalar(c, t, v);
        return v;
    }
    uint64_t at = c.pos();
    uint32_t et = c.read<uint32_t>("array element type");
    if (!valid_type(et)) c.fail_at(at, "unknown array element type " + std::to_string(et));
    v.elem_type = static_cast<GgufType>(et);
    if (v.elem_type == GgufType::array && depth >= kMaxArrayNesting)
        c.fail_at(at, "nested arrays deeper than " + std::to_string(kMaxArrayNesting) + " are not supported");
    uint64_t n = c.read<uint64_t>("array length");
    // Each element takes at least one byte (strings at least 8): bound n by what remains.
    uint64_t min_elem = v.elem_type == GgufType::string ? 8 : std::max<uint64_t>(1, scalar_size(v.elem_type));
    if (v.elem_type == GgufType::array) min_elem = 12;
    if (n > c.remaining() / min_elem)
        c.fail_at(at, "array of " + std::to_string(n) + " elements cannot fit in the " +
                          std::to_string(c.remaining()) + " bytes left");
    if (v.elem_type == GgufType::string) {
        v.strings.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.strings.push_back(c.read_string("array string"));
    } else if (v.elem_type == GgufType::array) {
        for (uint64_t k = 0; k < n; ++k) read_value(c, GgufType::array, depth + 1);  // validated, not kept
    } else {
        v.numbers.reserve(n);
        GgufValue tmp;
        for (uint64_t k = 0; k < n; ++k) {
            read_scalar(c, v.elem_type, tmp);
            v.numbers.push_back(v.elem_type == GgufType::f32 || v.elem_type == GgufType::f64 ? tmp.f
                                : v.elem_type == GgufType::u64 ? double(tmp.u) : double(tmp.i));
        }
    }
    return v;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
    static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                 "bool", "string", "array", "u64", "i64", "f64"};
    auto i = static_cast<uint32_t>(t);
    return i < std::size(names) ? names[i] : "unknown";
}

int64_t TensorInfo::n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw GgufError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw GgufError(path + ": not a regular file");
    }
    std::shared_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    f->size_ = static_cast<uint64_t>(st.st_size);
    if (f->size_ > 0) {
        void* m = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw GgufError(path + ": mmap failed: " + std::strerror(e));
        }
        f->map_ = m;
        f->base_ = static_cast<const uint8_t*>(m);
    }
    ::close(fd);
    f->parse_all();
    return f;
}

std::shared_ptr<const GgufFile> GgufFile::parse(std::vector<uint8_t> bytes, const std::string& name) {
    std::shared_ptr<GgufFile> f(new GgufFile());
    f->path_ = name;
    f->owned_ = std::move(bytes);
    f->base_ = f->owned_.data();
    f->size_ = f->owned_.size();
    f->parse_all();
    return f;
}

GgufFile::~GgufFile() {
    if (map_) munmap(map_, size_);
}

void GgufFile::parse_all() {
    Cursor c(base_, size_, path_);
    if (size_ < 4 || std::memcmp(base_, "GGUF", 4) != 0) c.fail("bad magic (not a GGUF file)");
    c.skip(4, "magic");
    version_ = c.read<uint32_t>("version");
    if (version_ != 2 && version_ != 3)
        c.fail_at(4, "unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
    uint64_t n_tensors = c.read<uint64_t>("tensor count");
    uint64_t n_kv = c.read<uint64_t>("metadata count");
    // A metadata pair takes at least 8 (key len) + 1 + 4 + 1 bytes; a tensor info at least 8+4+8+4+8.
    if (n_kv > c.remaining() / 13) c.fail_at(16, "absurd metadata count " + std::to_string(n_kv));
    if (n_tensors > c.remaining() / 32) c.fail_at(8, "absurd tensor count " + std::to_string(n_tensors));

    kv_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
        uint64_t at = c.pos();
        std::string_view key = c.read_string("metadata key");
        if (key.empty() || key.size() > kMaxKeyOrNameLen) c.fail_at(at, "metadata key of length " + std::to_string(key.size()));
        uint64_t tat = c.pos();
        uint32_t t = c.read<uint32_t>("metadata value type");
        if (!valid_type(t)) c.fail_at(tat, "unknown metadata value type " + std::to_string(t) + " for key '" + std::string(key) + "'");
        GgufValue v = read_value(c, static_cast<GgufType>(t), 0);
        std::string skey(key);
        if (kv_index_.count(skey)) c.fail_at(at, "duplicate metadata key '" + skey + "'");
        kv_index_.emplace(skey, kv_.size());
        kv_.emplace_back(std::move(skey), std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != GgufType::u32 && a->type != GgufType::u64 && a->type != GgufType::i32)
            throw GgufError(path_ + ": general.alignment has type " + std::string(gguf_type_name(a->type)));
        alignment_ = a->u;
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > (1u << 20))
            throw GgufError(path_ + ": general.alignment " + std::to_string(alignment_) + " is not a power of two <= 1 MiB");
    }

    tensors_.reserve(n_tensors);
    std::vector<uint64_t> rel_offsets;
    std::vector<uint64_t> info_at;
    for (uint64_t k = 0; k < n_tensors; ++k) {
        uint64_t at = c.pos();
        TensorInfo ti;
        std::string_view name = c.read_string("tensor name");
        if (name.empty() || name.size() > kMaxKeyOrNameLen) c.fail_at(at, "tensor name of length " + std::to_string(name.size()));
        ti.name = std::string(name);
        uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            c.fail_at(at, "tensor '" + ti.name + "' has " + std::to_string(n_dims) + " dimensions (1.." + std::to_string(kMaxDims) + ")");
        uint64_t total = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t dim = c.read<uint64_t>("tensor dimension");
            if (dim == 0 || dim > (uint64_t(1) << 40) || total > (uint64_t(1) << 42) / dim)
                c.fail_at(at, "tensor '" + ti.name + "' has an absurd dimension " + std::to_string(dim));
            total *= dim;
            ti.ne.push_back(static_cast<int64_t>(dim));
        }
        uint64_t tat = c.pos();
        uint32_t raw_type = c.read<uint32_t>("tensor type");
        const tensor::DTypeInfo* info = tensor::dtype_info(raw_type);
        if (!info) c.fail_at(tat, "tensor '" + ti.name + "' has unknown type " + std::to_string(raw_type));
        ti.type = info->type;
        if (ti.ne[0] % info->block_size != 0)
            c.fail_at(at, "tensor '" + ti.name + "' row of " + std::to_string(ti.ne[0]) + " elements is not a multiple of " +
                              std::string(info->name) + "'s block size " + std::to_string(info->block_size));
        ti.nbytes = total / info->block_size * info->type_size;
        uint64_t off = c.read<uint64_t>("tensor offset");
        if (off % alignment_ != 0)
            c.fail_at(at, "tensor '" + ti.name + "' offset " + std::to_string(off) + " is not aligned to " + std::to_string(alignment_));
        if (tensor_index_.count(ti.name)) c.fail_at(at, "duplicate tensor name '" + ti.name + "'");
        tensor_index_.emplace(ti.name, tensors_.size());
        rel_offsets.push_back(off);
        info_at.push_back(at);
        tensors_.push_back(std::move(ti));
    }

    uint64_t pad = (alignment_ - c.pos() % alignment_) % alignment_;
    data_offset_ = c.pos() + pad;
    if (n_tensors > 0 && data_offset_ > size_) c.fail("truncated file: data section starts past the end");

    // Check each tensor lies inside the file and that no two overlap.
    std::vector<size_t> order(tensors_.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rel_offsets[a] < rel_offsets[b]; });
    uint64_t prev_end = 0;
    const TensorInfo* prev = nullptr;
    for (size_t k : order) {
        TensorInfo& ti = tensors_[k];
        uint64_t rel = rel_offsets[k];
        uint64_t data_size = size_ - data_offset_;
        if (rel > data_size || ti.nbytes > data_size - rel)
            c.fail_at(info_at[k], "tensor '" + ti.name + "' data [" + std::to_string(data_offset_ + rel) + ", " +
                                      std::to_string(data_offset_ + rel + ti.nbytes) + ") extends past the end of the file (" +
                                      std::to_string(size_) + " bytes)");
        if (prev && rel < prev_end)
            c.fail_at(info_at[k], "tensor '" + ti.name + "' overlaps tensor '" + prev->name + "'");
        ti.offset = data_offset_ + rel;
        ti.data = base_ + ti.offset;
        prev_end = rel + ti.nbytes;
        prev = &ti;
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

static bool is_int_type(GgufType t) {
    switch (t) {
        case GgufType::u8: case GgufType::i8: case GgufType::u16: case GgufType::i16:
        case GgufType::u32: case GgufType::i32: case GgufType::u64: case GgufType::i64: return true;
        default: return false;
    }
}

std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
    const GgufValue* v = find(key);
    if (!v) return std::string(fallback);
    if (v->type != GgufType::string)
        throw GgufError(path_ + ": metadata key '" + std::string(key) + "' is " + std::string(gguf_type_name(v->type)) + ", expected string");
    return std::string(v->str);
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!is_int_type(v->type) && v->type != GgufType::boolean)
        throw GgufError(path_ + ": metadata key '" + std::string(key) + "' is " + std::string(gguf_type_name(v->type)) + ", expected an integer");
    return v->i;
}

double GgufFile::get_float(std::string_view key, double fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!is_int_type(v->type) && v->type != GgufType::f32 && v->type != GgufType::f64)
        throw GgufError(path_ + ": metadata key '" + std::string(key) + "' is " + std::string(gguf_type_name(v->type)) + ", expected a number");
    return v->f;
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::boolean && !is_int_type(v->type))
        throw GgufError(path_ + ": metadata key '" + std::string(key) + "' is " + std::string(gguf_type_name(v->type)) + ", expected bool");
    return v->i != 0;
}

int64_t GgufFile::require_int(std::string_view key) const {
    if (!find(key)) throw GgufError(path_ + ": required metadata key '" + std::string(key) + "' is missing");
    return get_int(key, 0);
}

double GgufFile::require_float(std::string_view key) const {
    if (!find(key)) throw GgufError(path_ + ": required metadata key '" + std::string(key) + "' is missing");
    return get_float(key, 0);
}

const TensorInfo* GgufFile::tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view GgufFile::header_bytes() const {
    return std::string_view(reinterpret_cast<const char*>(base_), std::min(data_offset_, size_));
}

}  // namespace llmn::model
