// The GGUF reader on valid files and on one named defect per case, plus a
// seeded bit-flip / truncation sweep: every malformed file must give a
// GgufError naming the file and offset, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "model/gguf_reader.h"
#include "model/gguf_writer.h"
#include "support/test_support.h"

namespace llmn::model {
namespace {

std::vector<uint8_t> f32_bytes(std::vector<float> v) {
    std::vector<uint8_t> out(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::vector<uint8_t> sample_file() {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    w.set_array_strings("tokenizer.ggml.tokens", {"a", "b", "c"});
    w.set_array_f32("tokenizer.ggml.scores", {0.5f, -1.0f, 2.0f});
    w.add_tensor("a.weight", tensor::DType::f32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
    w.add_tensor("b.weight", tensor::DType::f32, {4}, f32_bytes({9, 10, 11, 12}));
    return w.to_bytes();
}

// Offset of the tensor-info fields that follow the name `name`.
size_t info_offset(const std::vector<uint8_t>& f, const std::string& name) {
    for (size_t i = 0; i + name.size() <= f.size(); ++i)
        if (std::memcmp(f.data() + i, name.data(), name.size()) == 0) return i + name.size();
    ADD_FAILURE() << name << " not found";
    return 0;
}

template <class T>
void poke(std::vector<uint8_t>& f, size_t at, T v) { std::memcpy(f.data() + at, &v, sizeof v); }

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
    try {
        GgufFile::parse(bytes, "case.gguf");
        FAIL() << "parsed a malformed file; expected an error containing '" << needle << "'";
    } catch (const GgufError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("case.gguf"), std::string::npos) << msg;
        EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
}

TEST(GgufReader, ReadsMetadataAndTensors) {
    auto f = GgufFile::parse(sample_file());
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->get_int("llama.block_count", 0), 1);
    ASSERT_NE(f->find("tokenizer.ggml.tokens"), nullptr);
    EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strings.size(), 3u);
    EXPECT_EQ(f->find("tokenizer.ggml.scores")->numbers[2], 2.0);
    const TensorInfo* a = f->tensor("a.weight");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->ne, (std::vector<int64_t>{4, 2}));
    EXPECT_EQ(a->nbytes, 32u);
    EXPECT_EQ(a->offset % 32, 0u);
    float v;
    std::memcpy(&v, f->tensor("b.weight")->data + 4, 4);
    EXPECT_EQ(v, 10.0f);
    EXPECT_EQ(f->get_int("missing", 7), 7);
    EXPECT_THROW(f->get_int("general.architecture", 0), GgufError);
}

TEST(GgufReader, AcceptsVersionTwoAndRejectsOthers) {
    auto bytes = sample_file();
    poke<uint32_t>(bytes, 4, 2);
    EXPECT_EQ(GgufFile::parse(bytes)->version(), 2u);
    poke<uint32_t>(bytes, 4, 1);
    expect_error(bytes, "unsupported GGUF version 1");
}

TEST(GgufReader, RejectsBadMagic) {
    auto bytes = sample_file();
    bytes[0] = 'X';
    expect_error(bytes, "bad magic");
}

TEST(GgufReader, RejectsAbsurdTensorCount) {
    auto bytes = sample_file();
    poke<uint64_t>(bytes, 8, uint64_t(1) << 60);
    expect_error(bytes, "absurd tensor count");
}

TEST(GgufReader, RejectsAbsurdMetadataCount) {
    auto bytes = sample_file();
    poke<uint64_t>(bytes, 16, uint64_t(1) << 62);
    expect_error(bytes, "absurd metadata count");
}

TEST(GgufReader, RejectsStringLongerThanTheFile) {
    auto bytes = sample_file();
    poke<uint64_t>(bytes, 24, uint64_t(1) << 40);  // length of the first key
    expect_error(bytes, "exceeds the");
}

TEST(GgufReader, RejectsUnknownTensorType) {
    auto bytes = sample_file();
    const size_t at = info_offset(bytes, "b.weight");
    poke<uint32_t>(bytes, at + 4 + 8, 99);  // n_dims u32, ne[0] u64, then type
    expect_error(bytes, "unknown type 99");
}

TEST(GgufReader, RejectsTensorDataPastEndOfFile) {
    auto bytes = sample_file();
    const size_t at = info_offset(bytes, "b.weight");
    poke<uint64_t>(bytes, at + 4 + 8 + 4, 1 << 20);  // offset
    expect_error(bytes, "past the end of the file");
}

TEST(GgufReader, RejectsOverlappingTensors) {
    auto bytes = sample_file();
    const size_t at = info_offset(bytes, "b.weight");
    poke<uint64_t>(bytes, at + 4 + 8 + 4, 0);  // same offset as a.weight
    expect_error(bytes, "overlaps");
}

// End of the last tensor's data (the writer may pad the file beyond it).
size_t data_end(const std::vector<uint8_t>& bytes) {
    size_t end = 0;
    const auto file = GgufFile::parse(bytes);  // kept alive: a temporary would die before the loop
    for (const auto& t : file->tensors()) end = std::max<size_t>(end, t.offset + t.nbytes);
    return end;
}

TEST(GgufReader, RejectsTruncatedTensorData) {
    auto bytes = sample_file();
    bytes.resize(data_end(bytes) - 4);
    expect_error(bytes, "past the end of the file");
}

TEST(GgufReader, RejectsUnknownMetadataType) {
    auto bytes = sample_file();
    // First kv: key length u64 at 24, key bytes, then the value type.
    uint64_t key_len;
    std::memcpy(&key_len, bytes.data() + 24, 8);
    poke<uint32_t>(bytes, 24 + 8 + key_len, 77);
    expect_error(bytes, "unknown metadata value type 77");
}

TEST(GgufReader, RejectsTooManyDimensions) {
    auto bytes = sample_file();
    poke<uint32_t>(bytes, info_offset(bytes, "a.weight"), 9);
    expect_error(bytes, "dimensions");
}

TEST(GgufReader, EveryTruncationIsAnError) {
    const auto bytes = sample_file();
    for (size_t n = 0; n < data_end(bytes); ++n) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
        EXPECT_THROW(GgufFile::parse(cut, "cut.gguf"), GgufError) << "truncated to " << n << " bytes";
    }
}

TEST(GgufReader, RandomCorruptionNeverCrashes) {
    const auto bytes = sample_file();
    std::mt19937 rng(1234);
    int errors = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        auto b = bytes;
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= uint8_t(1u << (rng() % 8));
        try {
            auto f = GgufFile::parse(b, "fuzz.gguf");
            for (const auto& t : f->tensors()) ASSERT_LE(t.offset + t.nbytes, b.size());
        } catch (const GgufError&) {
            ++errors;
        }
    }
    EXPECT_GT(errors, 100);  // most flips land in the header and must be caught
}

TEST(GgufReader, OpenNamesTheMissingFile) {
    try {
        GgufFile::open("/nonexistent/model.gguf");
        FAIL();
    } catch (const GgufError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
    }
}

TEST(GgufReader, ReadsEverySharedModel) {
    LLMN_REQUIRE_SHARED();
    for (const char* f : {"models/synthetic/qwen2-q8_0.gguf", "models/real/llama-stories260k-f32.gguf",
                          "models/real/vocab/gpt2-vocab-only.gguf"}) {
        auto g = GgufFile::open(testing::shared_path(f));
        EXPECT_FALSE(g->get_string("general.architecture").empty()) << f;
    }
}

}  // namespace
}  // namespace llmn::model
