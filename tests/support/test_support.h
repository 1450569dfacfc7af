// Helpers shared by the test executables.
#pragma once
#include <gtest/gtest.h>

#include <string>

namespace llmn::testing {

// Absolute path of ../shared beside the checkout, or "" when it is absent
// (a user's fresh clone): tests that need it skip with a clear message.
std::string shared_dir();
// Path of a file under ../shared ("models/synthetic/qwen2-q8_0.gguf").
std::string shared_path(const std::string& rel);
// Path of the built llm-node binary.
std::string llm_node_binary();
// A fresh file path under the test temp folder.
std::string temp_path(const std::string& name);
// Whole file contents.
std::string read_file(const std::string& path);

}  // namespace llmn::testing

#define LLMN_REQUIRE_SHARED()                                                          \
    do {                                                                               \
        if (::llmn::testing::shared_dir().empty())                                     \
            GTEST_SKIP() << "../shared (models and llama.cpp references) not found: "  \
                            "skipping this real-model check";                          \
    } while (0)
