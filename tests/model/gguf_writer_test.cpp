#include "model/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/gguf_reader.h"
#include "support/test_support.h"

namespace llmn::model {
namespace {

using tensor::DType;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (uint8_t& b : out) b = uint8_t(rng());
    return out;
}

struct TensorSpec {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
};

std::vector<TensorSpec> sample_tensors() {
    std::vector<TensorSpec> ts = {
        {"token_embd.weight", DType::q8_0, {64, 3}, {}},
        {"output_norm.weight", DType::f32, {5}, {}},  // 20 bytes: forces padding after it
        {"blk.0.attn_q.weight", DType::q4_k, {256, 2}, {}},
        {"blk.0.ffn_up.weight", DType::f16, {3, 2, 2, 1}, {}},
        {"blk.0.attn_k.weight", DType::bf16, {7}, {}},
    };
    uint32_t seed = 1;
    for (TensorSpec& t : ts) {
        int64_t rows = 1;
        for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
        t.data = random_bytes(tensor::row_bytes(t.type, t.ne[0]) * size_t(rows), seed++);
    }
    return ts;
}

// Sets one key of every metadata type, arrays of every element type included.
void set_all_metadata(GgufWriter& w) {
    w.set_string("general.architecture", "llama");
    w.set_u8("test.u8", 200);
    w.set_i8("test.i8", -100);
    w.set_u16("test.u16", 65000);
    w.set_i16("test.i16", -32000);
    w.set_u32("test.u32", 4000000000u);
    w.set_i32("test.i32", -2000000000);
    w.set_u64("test.u64", 1ull << 40);
    w.set_i64("test.i64", -(1ll << 40));
    w.set_f32("test.f32", 0.15625f);
    w.set_f64("test.f64", -2.5e-7);
    w.set_bool("test.true", true);
    w.set_bool("test.false", false);
    w.set_string("test.empty_string", "");
    w.set_string("test.utf8", "h\xc3\xa9llo \xe2\x96\x81world");
    w.set_array_strings("tokenizer.ggml.tokens", {"<s>", "</s>", "", "\xe2\x96\x81the"});
    w.set_array_u8("test.arr_u8", {0, 255, 7});
    w.set_array_i8("test.arr_i8", {-128, 127});
    w.set_array_u16("test.arr_u16", {1, 65535});
    w.set_array_i16("test.arr_i16", {-32768, 32767});
    w.set_array_u32("test.arr_u32", {0, 4294967295u});
    w.set_array_i32("tokenizer.ggml.token_type", {1, 3, 3, 1});
    w.set_array_u64("test.arr_u64", {1ull << 50});
    w.set_array_i64("test.arr_i64", {-(1ll << 50), 5});
    w.set_array_f32("tokenizer.ggml.scores", {0.0f, -1.5f, 3.25f});
    w.set_array_f64("test.arr_f64", {1e-300, -4.0});
    w.set_array_bool("test.arr_bool", {true, false, true});
    w.set_array_i32("test.arr_empty", {});
}

void check_all_metadata(const GgufFile& f) {
    auto get = [&](const char* key) -> const GgufValue& {
        const GgufValue* v = f.find(key);
        if (!v) throw std::runtime_error(std::string("missing key ") + key);
        return *v;
    };
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(get("test.u8").type, GgufType::u8);
    EXPECT_EQ(get("test.u8").u, 200u);
    EXPECT_EQ(get("test.i8").type, GgufType::i8);
    EXPECT_EQ(get("test.i8").i, -100);
    EXPECT_EQ(get("test.u16").type, GgufType::u16);
    EXPECT_EQ(get("test.u16").u, 65000u);
    EXPECT_EQ(get("test.i16").type, GgufType::i16);
    EXPECT_EQ(get("test.i16").i, -32000);
    EXPECT_EQ(get("test.u32").type, GgufType::u32);
    EXPECT_EQ(get("test.u32").u, 4000000000u);
    EXPECT_EQ(get("test.i32").type, GgufType::i32);
    EXPECT_EQ(get("test.i32").i, -2000000000);
    EXPECT_EQ(get("test.u64").type, GgufType::u64);
    EXPECT_EQ(get("test.u64").u, 1ull << 40);
    EXPECT_EQ(get("test.i64").type, GgufType::i64);
    EXPECT_EQ(get("test.i64").i, -(1ll << 40));
    EXPECT_EQ(get("test.f32").type, GgufType::f32);
    EXPECT_EQ(get("test.f32").f, 0.15625);
    EXPECT_EQ(get("test.f64").type, GgufType::f64);
    EXPECT_EQ(get("test.f64").f, -2.5e-7);
    EXPECT_EQ(get("test.true").type, GgufType::boolean);
    EXPECT_TRUE(f.get_bool("test.true", false));
    EXPECT_FALSE(f.get_bool("test.false", true));
    EXPECT_EQ(get("test.empty_string").type, GgufType::string);
    EXPECT_EQ(f.get_string("test.empty_string", "x"), "");
    EXPECT_EQ(f.get_string("test.utf8"), "h\xc3\xa9llo \xe2\x96\x81world");

    const GgufValue& tokens = get("tokenizer.ggml.tokens");
    EXPECT_EQ(tokens.type, GgufType::array);
    EXPECT_EQ(tokens.elem_type, GgufType::string);
    ASSERT_EQ(tokens.strings.size(), 4u);
    EXPECT_EQ(tokens.strings[0], "<s>");
    EXPECT_EQ(tokens.strings[1], "</s>");
    EXPECT_EQ(tokens.strings[2], "");
    EXPECT_EQ(tokens.strings[3], "\xe2\x96\x81the");

    auto numbers = [&](const char* key, GgufType elem) {
        const GgufValue& v = get(key);
        EXPECT_EQ(v.type, GgufType::array) << key;
        EXPECT_EQ(v.elem_type, elem) << key;
        return v.numbers;
    };
    EXPECT_EQ(numbers("test.arr_u8", GgufType::u8), (std::vector<double>{0, 255, 7}));
    EXPECT_EQ(numbers("test.arr_i8", GgufType::i8), (std::vector<double>{-128, 127}));
    EXPECT_EQ(numbers("test.arr_u16", GgufType::u16), (std::vector<double>{1, 65535}));
    EXPECT_EQ(numbers("test.arr_i16", GgufType::i16), (std::vector<double>{-32768, 32767}));
    EXPECT_EQ(numbers("test.arr_u32", GgufType::u32), (std::vector<double>{0, 4294967295.0}));
    EXPECT_EQ(numbers("tokenizer.ggml.token_type", GgufType::i32), (std::vector<double>{1, 3, 3, 1}));
    EXPECT_EQ(numbers("test.arr_u64", GgufType::u64), (std::vector<double>{double(1ull << 50)}));
    EXPECT_EQ(numbers("test.arr_i64", GgufType::i64), (std::vector<double>{-double(1ll << 50), 5}));
    EXPECT_EQ(numbers("tokenizer.ggml.scores", GgufType::f32), (std::vector<double>{0.0, -1.5, 3.25}));
    EXPECT_EQ(numbers("test.arr_f64", GgufType::f64), (std::vector<double>{1e-300, -4.0}));
    EXPECT_EQ(numbers("test.arr_bool", GgufType::boolean), (std::vector<double>{1, 0, 1}));
    EXPECT_EQ(get("test.arr_empty").array_len(), 0u);
}

void check_tensors(const GgufFile& f, const std::vector<TensorSpec>& specs, uint64_t alignment) {
    ASSERT_EQ(f.tensors().size(), specs.size());
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    uint64_t expected_rel = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
        const TensorSpec& s = specs[i];
        const TensorInfo& t = f.tensors()[i];  // file order is add order
        EXPECT_EQ(t.name, s.name);
        EXPECT_EQ(t.type, s.type) << s.name;
        EXPECT_EQ(t.ne, s.ne) << s.name;
        EXPECT_EQ(t.nbytes, s.data.size()) << s.name;
        EXPECT_EQ(t.offset % alignment, 0u) << s.name;
        EXPECT_EQ(t.offset, f.data_offset() + expected_rel) << s.name;
        ASSERT_NE(t.data, nullptr);
        EXPECT_EQ(std::memcmp(t.data, s.data.data(), s.data.size()), 0) << s.name;
        // Padding after each tensor is zero.
        uint64_t padded = (s.data.size() + alignment - 1) / alignment * alignment;
        for (uint64_t b = s.data.size(); b < padded; ++b) EXPECT_EQ(t.data[b], 0) << s.name << " pad byte " << b;
        expected_rel += padded;
        EXPECT_EQ(f.tensor(s.name), &t);
    }
    EXPECT_EQ(f.file_size(), f.data_offset() + expected_rel);
}

TEST(GgufWriter, RoundTripsEveryMetadataTypeAndTensors) {
    GgufWriter w;
    set_all_metadata(w);
    auto specs = sample_tensors();
    for (const TensorSpec& s : specs) w.add_tensor(s.name, s.type, s.ne, s.data);
    EXPECT_EQ(w.n_tensors(), specs.size());
    EXPECT_EQ(w.alignment(), 32u);

    std::string path = llmn::testing::temp_path("writer_roundtrip.gguf");
    w.write(path);
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->alignment(), 32u);
    EXPECT_EQ(f->metadata().size(), w.n_kv());
    check_all_metadata(*f);
    check_tensors(*f, specs, 32);

    // Keys come back in the order they were set.
    EXPECT_EQ(f->metadata().front().first, "general.architecture");
    EXPECT_EQ(f->metadata().back().first, "test.arr_empty");

    // to_bytes() and write() produce the same file.
    std::string on_disk = llmn::testing::read_file(path);
    std::vector<uint8_t> bytes = w.to_bytes();
    ASSERT_EQ(on_disk.size(), bytes.size());
    EXPECT_EQ(std::memcmp(on_disk.data(), bytes.data(), bytes.size()), 0);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(GgufWriter, HonoursACustomAlignment) {
    GgufWriter w;
    w.set_u32("general.alignment", 64);
    w.set_string("general.name", "aligned");
    auto specs = sample_tensors();
    for (const TensorSpec& s : specs) w.add_tensor(s.name, s.type, s.ne, s.data);
    EXPECT_EQ(w.alignment(), 64u);
    auto f = GgufFile::parse(w.to_bytes());
    EXPECT_EQ(f->alignment(), 64u);
    check_tensors(*f, specs, 64);
}

TEST(GgufWriter, ExactBytesOfASmallFile) {
    GgufWriter w;
    w.set_u32("a", 7);
    w.add_tensor("t", DType::f32, {1}, {0x00, 0x00, 0x80, 0x3f});  // 1.0f
    std::vector<uint8_t> expected = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0,                  // magic, version 3
        1, 0, 0, 0, 0, 0, 0, 0,                          // 1 tensor
        1, 0, 0, 0, 0, 0, 0, 0,                          // 1 kv
        1, 0, 0, 0, 0, 0, 0, 0, 'a',                     // key "a"
        4, 0, 0, 0, 7, 0, 0, 0,                          // u32 7
        1, 0, 0, 0, 0, 0, 0, 0, 't',                     // name "t"
        1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,              // 1 dim: ne[0] = 1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,              // F32, offset 0
    };
    expected.resize(96, 0);  // 74 header bytes padded to 96
    expected.insert(expected.end(), {0x00, 0x00, 0x80, 0x3f});
    expected.resize(128, 0);  // the tensor padded to 32
    EXPECT_EQ(w.to_bytes(), expected);
}

TEST(GgufWriter, EmptyWriterIsAValidFile) {
    GgufWriter w;
    auto bytes = w.to_bytes();
    EXPECT_EQ(bytes.size(), 24u);  // no tensors: no padding after the header
    auto f = GgufFile::parse(bytes);
    EXPECT_TRUE(f->metadata().empty());
    EXPECT_TRUE(f->tensors().empty());
}

TEST(GgufWriter, SettingAKeyAgainReplacesItInPlace) {
    GgufWriter w;
    w.set_u32("first", 1);
    w.set_string("second", "x");
    w.set_f32("first", 2.5f);
    EXPECT_EQ(w.n_kv(), 2u);
    EXPECT_TRUE(w.has_key("second"));
    EXPECT_FALSE(w.has_key("third"));
    auto f = GgufFile::parse(w.to_bytes());
    ASSERT_EQ(f->metadata().size(), 2u);
    EXPECT_EQ(f->metadata()[0].first, "first");
    EXPECT_EQ(f->metadata()[0].second.type, GgufType::f32);
    EXPECT_EQ(f->get_float("first", 0.0), 2.5);
}

TEST(GgufWriter, RejectsBadTensors) {
    GgufWriter w;
    w.add_tensor("a", DType::f32, {4}, std::vector<uint8_t>(16));
    // One named case per defect.
    EXPECT_THROW(w.add_tensor("a", DType::f32, {4}, std::vector<uint8_t>(16)), std::invalid_argument);  // duplicate
    EXPECT_THROW(w.add_tensor("b", DType::f32, {4}, std::vector<uint8_t>(15)), std::invalid_argument);  // short data
    EXPECT_THROW(w.add_tensor("c", DType::q8_0, {32, 2}, std::vector<uint8_t>(34)), std::invalid_argument);  // 1 row of 2
    EXPECT_THROW(w.add_tensor("d", DType::q4_0, {16}, std::vector<uint8_t>(9)), std::invalid_argument);  // partial block
    EXPECT_THROW(w.add_tensor("e", DType::f32, {}, {}), std::invalid_argument);                         // no dims
    EXPECT_THROW(w.add_tensor("f", DType::f32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("g", DType::f32, {0}, {}), std::invalid_argument);   // zero dimension
    EXPECT_THROW(w.add_tensor("h", DType::f32, {-4}, {}), std::invalid_argument);  // negative dimension
    EXPECT_THROW(w.add_tensor("", DType::f32, {1}, std::vector<uint8_t>(4)), std::invalid_argument);
    EXPECT_THROW(w.add_tensor(std::string(64, 'n'), DType::f32, {1}, std::vector<uint8_t>(4)), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("i", DType(99), {1}, std::vector<uint8_t>(4)), std::invalid_argument);  // unknown type
    w.add_tensor(std::string(63, 'n'), DType::f32, {1}, std::vector<uint8_t>(4));
    EXPECT_EQ(w.n_tensors(), 2u);
    try {
        w.add_tensor("b", DType::f32, {4}, std::vector<uint8_t>(15));
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
    }
}

TEST(GgufWriter, RejectsBadMetadata) {
    GgufWriter w;
    EXPECT_THROW(w.set_u32("", 1), std::invalid_argument);
    EXPECT_THROW(w.set_u32(std::string(65536, 'k'), 1), std::invalid_argument);
    EXPECT_THROW(w.set_u32("general.alignment", 0), std::invalid_argument);
    EXPECT_THROW(w.set_u32("general.alignment", 48), std::invalid_argument);
    EXPECT_THROW(w.set_u64("general.alignment", 64), std::invalid_argument);
    EXPECT_EQ(w.alignment(), 32u);
    EXPECT_EQ(w.n_kv(), 0u);
}

// Copies a parsed file into a writer: metadata in file order, then the tensors.
GgufWriter copy_into_writer(const GgufFile& f) {
    GgufWriter w;
    for (const auto& [key, v] : f.metadata()) {
        switch (v.type) {
        case GgufType::u8: w.set_u8(key, uint8_t(v.u)); break;
        case GgufType::i8: w.set_i8(key, int8_t(v.i)); break;
        case GgufType::u16: w.set_u16(key, uint16_t(v.u)); break;
        case GgufType::i16: w.set_i16(key, int16_t(v.i)); break;
        case GgufType::u32: w.set_u32(key, uint32_t(v.u)); break;
        case GgufType::i32: w.set_i32(key, int32_t(v.i)); break;
        case GgufType::u64: w.set_u64(key, v.u); break;
        case GgufType::i64: w.set_i64(key, v.i); break;
        case GgufType::f32: w.set_f32(key, float(v.f)); break;
        case GgufType::f64: w.set_f64(key, v.f); break;
        case GgufType::boolean: w.set_bool(key, v.b); break;
        case GgufType::string: w.set_string(key, v.str); break;
        case GgufType::array: {
            auto as = [&](auto tag) {
                using T = decltype(tag);
                std::vector<T> out;
                for (double d : v.numbers) out.push_back(T(d));
                return out;
            };
            switch (v.elem_type) {
            case GgufType::string: w.set_array_strings(key, {v.strings.begin(), v.strings.end()}); break;
            case GgufType::u8: w.set_array_u8(key, as(uint8_t{})); break;
            case GgufType::i8: w.set_array_i8(key, as(int8_t{})); break;
            case GgufType::u16: w.set_array_u16(key, as(uint16_t{})); break;
            case GgufType::i16: w.set_array_i16(key, as(int16_t{})); break;
            case GgufType::u32: w.set_array_u32(key, as(uint32_t{})); break;
            case GgufType::i32: w.set_array_i32(key, as(int32_t{})); break;
            case GgufType::u64: w.set_array_u64(key, as(uint64_t{})); break;
            case GgufType::i64: w.set_array_i64(key, as(int64_t{})); break;
            case GgufType::f32: w.set_array_f32(key, as(float{})); break;
            case GgufType::f64: w.set_array_f64(key, as(double{})); break;
            case GgufType::boolean: w.set_array_bool(key, as(bool{})); break;
            default: throw std::runtime_error("nested array in " + key);
            }
            break;
        }
        }
    }
    for (const TensorInfo& t : f.tensors())
        w.add_tensor(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
    return w;
}

// Files written by llama.cpp's own GGUF writer come back byte for byte.
TEST(GgufWriter, RewritesLlamaCppFilesByteForByte) {
    LLMN_REQUIRE_SHARED();
    for (const char* rel : {"models/synthetic/llama-spm-mini-f32.gguf", "models/synthetic/llama-spm-q4_k_m.gguf",
                            "models/synthetic/qwen2-bf16.gguf", "models/synthetic/phi3-q5_k_m.gguf",
                            "models/real/llama-tinystories656k-q8_0.gguf", "models/real/vocab/gpt2-vocab-only.gguf"}) {
        std::string path = llmn::testing::shared_path(rel);
        if (!std::filesystem::exists(path)) continue;
        SCOPED_TRACE(rel);
        auto f = GgufFile::open(path);
        std::vector<uint8_t> rewritten = copy_into_writer(*f).to_bytes();
        ASSERT_EQ(rewritten.size(), f->file_size());
        size_t first_diff = 0;
        while (first_diff < rewritten.size() && rewritten[first_diff] == f->bytes()[first_diff]) ++first_diff;
        EXPECT_EQ(first_diff, rewritten.size()) << "first differing byte";
    }
}

TEST(GgufWriter, WriteFailureNamesThePath) {
    GgufWriter w;
    std::string path = "/nonexistent-dir-for-llmn-test/x.gguf";
    try {
        w.write(path);
        FAIL() << "write should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace llmn::model
