// A model fetched in part from the swarm: its manifest stands for the model id,
// is parsed strictly, and nothing computes with a tensor of a partial file
// whose bytes did not match the manifest's digest.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "engine/layer_span.h"
#include "engine/model.h"
#include "engine/model_id.h"
#include "engine/stages.h"
#include "model/gguf_reader.h"
#include "model/partial_model.h"
#include "model/weights_manifest.h"
#include "support/random_model.h"
#include "support/test_support.h"

namespace llmn::engine {
namespace {

namespace fs = std::filesystem;

class PartialModelTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = testing::temp_path(std::string("partial-") + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        if (const char* old = std::getenv("XDG_CACHE_HOME")) old_xdg_ = old;
        ::setenv("XDG_CACHE_HOME", (dir_ + "/xdg").c_str(), 1);
        testing::RandomModelSpec spec;
        spec.n_layer = 3;
        full_ = testing::write_random_model(spec, dir_ + "/full.gguf");
    }
    void TearDown() override {
        if (old_xdg_) ::setenv("XDG_CACHE_HOME", old_xdg_->c_str(), 1);
        else ::unsetenv("XDG_CACHE_HOME");
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    // A copy of the model with every tensor's bytes zeroed (the holes of a
    // sparse file) except those in `keep`, and the full model's manifest beside it.
    std::string partial_copy(const std::vector<std::string>& keep) {
        std::string bytes = testing::read_file(full_);
        const auto f = model::GgufFile::open(full_);
        for (const auto& t : f->tensors())
            if (std::find(keep.begin(), keep.end(), t.name) == keep.end())
                std::fill(bytes.begin() + long(t.offset), bytes.begin() + long(t.offset + t.nbytes), '\0');
        const std::string path = dir_ + "/part.gguf";
        std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
        model::write_partial_manifest(path, model::make_manifest(*f));
        return path;
    }
    std::string dir_, full_;
    std::optional<std::string> old_xdg_;
};

TEST_F(PartialModelTest, TheManifestRoundTripsAndStandsForTheModelId) {
    const auto m = Model::load(full_);
    const model::WeightsManifest man = model::make_manifest(m->file());
    const std::string bytes = model::serialize_manifest(man);
    EXPECT_EQ(bytes, model::serialize_manifest(model::make_manifest(m->file()))) << "deterministic";
    const model::WeightsManifest back = model::parse_manifest(bytes);
    EXPECT_EQ(back.file_size, m->file().file_size());
    EXPECT_EQ(back.header_size, m->file().header_bytes().size());
    ASSERT_EQ(back.digests.tensors.size(), m->file().tensors().size());
    EXPECT_EQ(model_id(back.digests), model_id(*m));
}

TEST_F(PartialModelTest, AMalformedManifestIsRefusedWithAClearError) {
    const auto f = model::GgufFile::open(full_);
    const std::string good = model::serialize_manifest(model::make_manifest(*f));
    // Every truncation, a trailing byte, a wrong magic.
    for (size_t n = 0; n < good.size(); n += 7) EXPECT_THROW(model::parse_manifest(good.substr(0, n)), model::GgufError) << n;
    EXPECT_THROW(model::parse_manifest(good + "x"), model::GgufError);
    std::string magic = good;
    magic[0] = 'L';
    EXPECT_THROW(model::parse_manifest(magic), model::GgufError);
    // A tensor count far beyond the bytes that follow: refused before allocating.
    std::string count = good;
    const size_t at = 20 + 8 + 8 + 32;
    count[at] = count[at + 1] = count[at + 2] = char(0xff), count[at + 3] = 0x00;
    try {
        model::parse_manifest(count);
        ADD_FAILURE() << "accepted a tensor count of 16M";
    } catch (const model::GgufError& e) {
        EXPECT_NE(std::string(e.what()).find("tensors"), std::string::npos) << e.what();
    }
    // A header larger than the file.
    std::string header = good;
    header[20 + 8 + 7] = char(0x7f);
    EXPECT_THROW(model::parse_manifest(header), model::GgufError);
}

TEST_F(PartialModelTest, APartialFileHasTheManifestsIdAndServesOnlyVerifiedTensors) {
    const auto full = model::GgufFile::open(full_);
    const auto layer1 = model::tensors_needed(*full, 1, 2, false);
    const std::string part = partial_copy(layer1);
    ASSERT_TRUE(model::is_partial(part));
    ASSERT_FALSE(model::is_partial(full_));
    const auto m = Model::load(part);
    // The id is the manifest's (the holes are not hashed), equal to the full file's.
    EXPECT_EQ(model_id(*m), model_id(*Model::load(full_)));

    // Nothing verified yet: no span, no stage.
    EXPECT_THROW(SpanWeights(m, 1, 2), model::GgufError);
    EXPECT_THROW(EmbeddingStage{m}, model::GgufError);
    // Layer 1 holds its bytes: it verifies, and then serves.
    EXPECT_TRUE(model::verify_tensors(m->file(), model::read_partial(part)->manifest, layer1).empty());
    EXPECT_NO_THROW(SpanWeights(m, 1, 2));
    EXPECT_THROW(SpanWeights(m, 0, 2), model::GgufError) << "layer 0 is a hole";
    // Layer 0's zeroed bytes do not match: none of it is put on the verified list.
    const auto layer0 = model::tensors_needed(*full, 0, 1, false);
    EXPECT_EQ(model::verify_tensors(m->file(), model::read_partial(part)->manifest, layer0).size(), layer0.size());
    EXPECT_THROW(SpanWeights(m, 0, 1), model::GgufError);
    EXPECT_EQ(model::read_partial(part)->verified.size(), layer1.size());
}

TEST_F(PartialModelTest, APartialFileWhoseHeaderIsNotItsManifestsIsRefused) {
    const std::string part = partial_copy({});
    testing::RandomModelSpec other;
    other.n_layer = 3;
    other.seed = 7;
    other.n_ff = 128;  // another shape: another header
    const std::string o = testing::write_random_model(other, dir_ + "/other.gguf");
    model::write_partial_manifest(part, model::make_manifest(*model::GgufFile::open(o)));
    EXPECT_THROW(model::tensor_digests(*model::GgufFile::open(part)), model::GgufError);
}

TEST_F(PartialModelTest, ANodeNeedsItsBlocksAndTheClientItsStages) {
    const auto f = model::GgufFile::open(full_);
    const auto node = model::tensors_needed(*f, 1, 3, false);
    for (const auto& n : node) {
        EXPECT_TRUE(n.rfind("blk.1.", 0) == 0 || n.rfind("blk.2.", 0) == 0) << n;
    }
    EXPECT_FALSE(node.empty());
    const auto client = model::tensors_needed(*f, 0, 0, true);
    EXPECT_NE(std::find(client.begin(), client.end(), "token_embd.weight"), client.end());
    EXPECT_NE(std::find(client.begin(), client.end(), "output_norm.weight"), client.end());
    for (const auto& n : client) EXPECT_NE(n.rfind("blk.", 0), 0u) << n;
}

}  // namespace
}  // namespace llmn::engine
