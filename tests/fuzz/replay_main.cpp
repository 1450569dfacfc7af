// Replays inputs through a fuzz target without libFuzzer, so any compiler and any build
// (plain or sanitized) runs them as a test: every regular file in the directories given,
// in name order. A crash, a trap or a sanitizer report fails the test; so does an empty
// corpus (a path typo would otherwise pass silently).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        std::error_code ec;
        if (!fs::is_directory(argv[i], ec)) continue;  // a target may have no regressions yet
        for (const auto& e : fs::directory_iterator(argv[i]))
            if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::fprintf(stderr, "fuzz replay: no inputs in the directories given\n");
        return 1;
    }
    size_t bytes = 0;
    for (const fs::path& p : files) {
        std::ifstream in(p, std::ios::binary);
        const std::vector<char> data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        std::fprintf(stderr, "%s\n", p.c_str());  // the last line names the input that crashed
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
        bytes += data.size();
    }
    std::printf("fuzz replay: %zu inputs (%zu bytes) ran clean\n", files.size(), bytes);
    return 0;
}
