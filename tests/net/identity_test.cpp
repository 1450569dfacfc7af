// Node identities: the key file, signatures and digests.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "net/identity.h"
#include "support/test_support.h"

namespace llmn::net {
namespace {

namespace fs = std::filesystem;

TEST(Identity, KeyFileIsCreatedWithMode0600AndReloadsEqual) {
    const std::string path = llmn::testing::temp_path("identity-create/nested/node.key");
    fs::remove_all(fs::path(path).parent_path());
    const Identity first = Identity::load_or_create(path);
    ASSERT_TRUE(fs::exists(path));
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const Identity again = Identity::load_or_create(path);
    EXPECT_EQ(again.public_key(), first.public_key());
    EXPECT_EQ(again.id_hex(), first.id_hex());
    EXPECT_EQ(first.id_hex().size(), 64u);
}

TEST(Identity, MalformedKeyFileIsRefusedNamingThePath) {
    const std::string path = llmn::testing::temp_path("identity-bad.key");
    std::ofstream(path) << "not a key\n";
    try {
        Identity::load_or_create(path);
        FAIL() << "a malformed key file was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(Identity, SignaturesVerifyOnlyForTheSignedBytesAndKey) {
    const Identity a = Identity::generate(), b = Identity::generate();
    EXPECT_NE(a.public_key(), b.public_key());
    std::vector<uint8_t> msg = {1, 2, 3, 4, 5};
    const Sig64 sig = a.sign(msg.data(), msg.size());
    EXPECT_TRUE(verify_signature(a.public_key(), sig, msg.data(), msg.size()));
    EXPECT_FALSE(verify_signature(b.public_key(), sig, msg.data(), msg.size()));
    msg[2] ^= 1;
    EXPECT_FALSE(verify_signature(a.public_key(), sig, msg.data(), msg.size()));
}

TEST(Identity, Digest256IsBlake2b256) {
    // Reference values from Python's hashlib.blake2b(digest_size=32).
    const Key32 empty = digest256("");
    EXPECT_EQ(to_hex(empty.data(), empty.size()), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    const Key32 abc = digest256("abc");
    EXPECT_EQ(to_hex(abc.data(), abc.size()), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST(Identity, ToHexIsLowerCase) {
    const uint8_t b[] = {0x00, 0xab, 0x7f, 0xff};
    EXPECT_EQ(to_hex(b, sizeof b), "00ab7fff");
}

}  // namespace
}  // namespace llmn::net
