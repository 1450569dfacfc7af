// The model id covers the weights: one changed byte of tensor data gives another
// id, the same bytes give the same id, and the per-tensor digest cache beside the
// file (or in the user cache) is used only while it matches the file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "engine/model.h"
#include "engine/model_id.h"
#include "model/gguf_reader.h"
#include "support/random_model.h"
#include "support/test_support.h"

namespace llmn::engine {
namespace {

namespace fs = std::filesystem;
using model::DigestSource;

// Each test gets its own folder and its own $XDG_CACHE_HOME.
class ModelIdTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = testing::temp_path(std::string("model-id-") + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        if (const char* old = std::getenv("XDG_CACHE_HOME")) old_xdg_ = old;
        set_xdg(dir_ + "/xdg");
    }
    void TearDown() override {
        if (old_xdg_) ::setenv("XDG_CACHE_HOME", old_xdg_->c_str(), 1);
        else ::unsetenv("XDG_CACHE_HOME");
        ::chmod(dir_.c_str(), 0755);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    static void set_xdg(const std::string& v) { ::setenv("XDG_CACHE_HOME", v.c_str(), 1); }

    std::string write_model(const std::string& name, uint64_t seed = 1) {
        testing::RandomModelSpec spec;
        spec.n_layer = 2;
        spec.seed = seed;
        return testing::write_random_model(spec, dir_ + "/" + name);
    }
    std::string dir_;
    std::optional<std::string> old_xdg_;
};

// Sets the file's mtime well outside the window in which a cache is not trusted.
void backdate(const std::string& path, std::chrono::minutes ago = std::chrono::minutes(60)) {
    fs::last_write_time(path, fs::file_time_type::clock::now() - ago);
}

// Flips every bit of the byte at `offset`, in place (mtime moves to now).
void flip_byte(const std::string& path, uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(offset));
    char c = 0;
    f.read(&c, 1);
    c = char(~c);
    f.seekp(std::streamoff(offset));
    f.write(&c, 1);
}

// The file offset of a byte inside the data of tensor `i`.
uint64_t data_byte_of(const std::string& path, size_t i) {
    const auto f = model::GgufFile::open(path);
    const auto& t = f->tensors().at(i);
    return t.offset + t.nbytes / 2;
}

// Makes the model's folder read-only (no write bit: root, who could write, leaves
// it alone too).
void make_read_only(const std::string& model) { ::chmod(fs::path(model).parent_path().c_str(), 0555); }

// Puts a folder where the cache beside `model` would go: the folder is writable
// but writing the cache there fails, even for root.
void block_beside(const std::string& model) {
    fs::create_directories(model::digest_cache_path_beside(model) + "/blocker");
}

model::DigestLoad load(const std::string& path) { return model::load_tensor_digests(*model::GgufFile::open(path)); }

TEST_F(ModelIdTest, OneChangedByteOfTensorDataChangesTheId) {
    const std::string a = write_model("a.gguf");
    const std::string b = dir_ + "/b.gguf";
    fs::copy_file(a, b);
    const size_t k = model::GgufFile::open(a)->tensors().size() / 2;
    flip_byte(b, data_byte_of(b, k));
    const auto ma = Model::load(a), mb = Model::load(b);
    // Same metadata and tensor index: the header-only id of old was the same.
    ASSERT_EQ(ma->file().header_bytes(), mb->file().header_bytes());
    EXPECT_NE(model_id(*ma), model_id(*mb));
    const auto da = tensor_digests(*ma), db = tensor_digests(*mb);
    ASSERT_EQ(da->tensors.size(), db->tensors.size());
    for (size_t i = 0; i < da->tensors.size(); ++i)
        EXPECT_EQ(da->tensors[i].digest == db->tensors[i].digest, i != k) << da->tensors[i].name;
}

TEST_F(ModelIdTest, SameBytesGiveTheSameId) {
    const std::string a = write_model("a.gguf");
    const std::string copy = dir_ + "/copy.gguf";
    fs::copy_file(a, copy);
    const ModelId id = model_id(*Model::load(a));
    EXPECT_EQ(id, model_id(*Model::load(a)));
    EXPECT_EQ(id, model_id(*Model::load(copy)));
    EXPECT_NE(id, model_id(*Model::load(write_model("other.gguf", 2))));
    // A file parsed from memory is hashed from its bytes, to the same digests.
    const std::string bytes = testing::read_file(a);
    const auto mem = model::GgufFile::parse(std::vector<uint8_t>(bytes.begin(), bytes.end()));
    EXPECT_EQ(id, model_id(*model::tensor_digests(*mem)));
}

TEST_F(ModelIdTest, DigestsAreThoseOfEachTensorsDataInIndexOrder) {
    const auto m = Model::load(write_model("a.gguf"));
    const auto d = tensor_digests(*m);
    const auto& ts = m->file().tensors();
    ASSERT_EQ(d->tensors.size(), ts.size());
    const auto h = m->file().header_bytes();
    EXPECT_EQ(d->header, model::digest_bytes(h.data(), h.size()));
    for (size_t i = 0; i < ts.size(); ++i) {
        EXPECT_EQ(d->tensors[i].name, ts[i].name);
        EXPECT_EQ(d->tensors[i].digest, model::digest_bytes(ts[i].data, ts[i].nbytes)) << ts[i].name;
    }
    EXPECT_EQ(model_id(*m), model_id(*d));
    model::TensorDigests swapped = *d;
    std::swap(swapped.tensors[0].digest, swapped.tensors[1].digest);
    EXPECT_NE(model_id(*d), model_id(swapped));
}

TEST_F(ModelIdTest, CacheIsWrittenBesideTheFileAndReused) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    const auto first = load(a);
    EXPECT_EQ(first.source, DigestSource::computed);
    EXPECT_EQ(first.cache_path, model::digest_cache_path_beside(a));
    EXPECT_TRUE(fs::is_regular_file(first.cache_path));
    const auto second = load(a);
    EXPECT_EQ(second.source, DigestSource::cache_file);
    EXPECT_EQ(second.cache_path, first.cache_path);
    EXPECT_EQ(model_id(*second.digests), model_id(*first.digests));
    // In one process the digests are kept: the same object comes back.
    const auto file = model::GgufFile::open(a);
    EXPECT_EQ(model::tensor_digests(*file), model::tensor_digests(*file));
}

TEST_F(ModelIdTest, FileJustWrittenIsNotCached) {
    const std::string a = write_model("a.gguf");  // mtime: now
    const auto got = load(a);
    EXPECT_EQ(got.source, DigestSource::computed);
    EXPECT_EQ(got.cache_path, "");
    EXPECT_FALSE(fs::exists(model::digest_cache_path_beside(a)));
}

TEST_F(ModelIdTest, CorruptCacheIsIgnoredAndRewritten) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    const auto good = load(a);
    const std::string cache = good.cache_path;
    ASSERT_FALSE(cache.empty());
    const std::string valid = testing::read_file(cache);
    const size_t n = valid.size();
    struct Case {
        const char* name;
        std::string bytes;
    };
    auto flipped = [&](size_t at) {
        std::string s = valid;
        s[at] = char(~s[at]);
        return s;
    };
    const Case cases[] = {
        {"empty", ""},
        {"truncated", valid.substr(0, n / 2)},
        {"one byte short", valid.substr(0, n - 1)},
        {"one byte more", valid + "x"},
        {"bad magic", flipped(0)},
        {"bad version", flipped(8)},
        {"flipped digest byte", flipped(n - 40)},
        {"flipped checksum byte", flipped(n - 1)},
        {"garbage", std::string(n, '\x5a')},
    };
    for (const Case& c : cases) {
        std::ofstream(cache, std::ios::binary | std::ios::trunc) << c.bytes;
        const auto got = load(a);
        EXPECT_EQ(got.source, DigestSource::computed) << c.name;
        EXPECT_EQ(model_id(*got.digests), model_id(*good.digests)) << c.name;
        EXPECT_EQ(testing::read_file(cache), valid) << c.name << ": rewritten";
        EXPECT_EQ(load(a).source, DigestSource::cache_file) << c.name;
    }
}

TEST_F(ModelIdTest, StaleCacheIsNotUsed) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    const auto m0 = Model::load(a);
    const ModelId id0 = model_id(*m0);
    ASSERT_EQ(load(a).source, DigestSource::cache_file);
    const uint64_t at = data_byte_of(a, 0);

    // Changed in place: new mtime (too fresh to cache), other digests.
    flip_byte(a, at);
    auto got = load(a);
    EXPECT_EQ(got.source, DigestSource::computed);
    EXPECT_NE(model_id(*got.digests), id0);
    EXPECT_NE(model_id(*Model::load(a)), id0);

    // Settled and cached, then changed back to the original bytes with its mtime
    // restored: size and mtime match the cache, only ctime tells, and it must.
    backdate(a, std::chrono::minutes(30));
    const auto settled = load(a);
    ASSERT_EQ(settled.source, DigestSource::computed);  // cached now, under the 30-minute mtime
    ASSERT_FALSE(settled.cache_path.empty());
    const auto mtime = fs::last_write_time(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a later ctime tick
    flip_byte(a, at);
    fs::last_write_time(a, mtime);
    got = load(a);
    EXPECT_EQ(got.source, DigestSource::computed);
    EXPECT_EQ(model_id(*got.digests), id0);  // the original bytes again
    EXPECT_EQ(model_id(*Model::load(a)), id0);

    // Bytes appended: the size differs, so the cache is not used (the bytes are
    // after the last tensor, outside every digest, so the id stays).
    backdate(a);
    ASSERT_FALSE(load(a).cache_path.empty());
    std::ofstream(a, std::ios::binary | std::ios::app) << std::string(64, '\0');
    backdate(a);
    got = load(a);
    EXPECT_EQ(got.source, DigestSource::computed);
    EXPECT_EQ(model_id(*got.digests), id0);
}

TEST_F(ModelIdTest, UnwritableFolderFallsBackToTheUserCache) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    make_read_only(a);
    const auto first = load(a);
    EXPECT_FALSE(fs::exists(model::digest_cache_path_beside(a)));
    EXPECT_EQ(first.source, DigestSource::computed);
    EXPECT_EQ(first.cache_path.rfind(dir_ + "/xdg/llm-node/digests/", 0), 0u) << first.cache_path;
    const auto second = load(a);
    EXPECT_EQ(second.source, DigestSource::cache_file);
    EXPECT_EQ(second.cache_path, first.cache_path);
    EXPECT_EQ(model_id(*second.digests), model_id(*first.digests));
}

TEST_F(ModelIdTest, FailedWriteBesideFallsBackToTheUserCache) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    block_beside(a);
    const auto first = load(a);
    EXPECT_EQ(first.source, DigestSource::computed);
    EXPECT_EQ(first.cache_path.rfind(dir_ + "/xdg/llm-node/digests/", 0), 0u) << first.cache_path;
    EXPECT_EQ(load(a).source, DigestSource::cache_file);
}

TEST_F(ModelIdTest, NothingWritableStillGivesTheId) {
    const std::string a = write_model("a.gguf");
    const ModelId id = model_id(*Model::load(a));
    backdate(a);
    block_beside(a);
    set_xdg(a + "/not-a-folder");  // under a regular file: no folder can be made
    const auto got = load(a);
    EXPECT_EQ(got.source, DigestSource::computed);
    EXPECT_EQ(got.cache_path, "");
    EXPECT_EQ(model_id(*got.digests), id);
    EXPECT_EQ(model_id(*Model::load(a)), id);
}

TEST_F(ModelIdTest, ProcessesStartingAtOnceAgree) {
    const std::string a = write_model("a.gguf");
    backdate(a);
    const ModelId id = model_id(*load(a).digests);
    fs::remove(model::digest_cache_path_beside(a));
    std::vector<std::thread> threads;
    std::vector<ModelId> ids(8);
    for (size_t i = 0; i < ids.size(); ++i) threads.emplace_back([&, i] { ids[i] = model_id(*load(a).digests); });
    for (auto& t : threads) t.join();
    for (const ModelId& x : ids) EXPECT_EQ(x, id);
    EXPECT_EQ(load(a).source, DigestSource::cache_file);
    size_t tmp_left = 0;
    for (const auto& e : fs::directory_iterator(dir_)) tmp_left += e.path().extension() == ".tmp";
    EXPECT_EQ(tmp_left, 0u);
}

}  // namespace
}  // namespace llmn::engine
