#include "support/test_support.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace llmn::testing {

std::string shared_dir() {
    namespace fs = std::filesystem;
    // LLM_NODE_SHARED overrides the built-in path (set it to a missing folder to
    // see the suite pass without ../shared, as on a user's fresh clone).
    const char* env = std::getenv("LLM_NODE_SHARED");
    fs::path p = env ? env : LLM_NODE_SHARED_DIR;
    if (fs::is_directory(p / "models") && fs::is_directory(p / "reference")) return p.string();
    return "";
}

std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }

std::string llm_node_binary() { return LLM_NODE_BINARY; }

std::string temp_path(const std::string& name) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("llm-node-tests-" + std::to_string(getpid()));
    fs::create_directories(dir);
    return (dir / name).string();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace llmn::testing
