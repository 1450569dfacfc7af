// The status page of `llm-node api` over a local 3-node swarm, rendered in
// headless Chromium (Debian's `chromium`): every node appears with its span
// and health, the coverage row is drawn, and the page's script refreshed it
// from /v1/swarm. The screenshot is kept as a test artifact.
#include <gtest/gtest.h>

#include <filesystem>

#include "../cli/run_process.h"
#include "api_fixture.h"

namespace llmn::testing {
namespace {

std::string chromium() {
    for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
        if (std::filesystem::exists(p)) return p;
    return "";
}

std::vector<std::string> headless(const std::string& profile) {
    return {chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=" + profile, "--window-size=1200,420", "--virtual-time-budget=4000"};
}

TEST(StatusPage, HeadlessChromiumShowsEveryNodeOfA3NodeSwarm) {
    if (chromium().empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium)";
    ApiSwarm sw(false);
    const std::string url = "http://" + sw.api->address() + "/";
    auto dom_cmd = headless(temp_path("chromium-profile-dom"));
    dom_cmd.insert(dom_cmd.end(), {"--dump-dom", url});
    const auto dom = run_process(dom_cmd, 120);
    ASSERT_EQ(dom.exit_code, 0) << dom.describe(2000);
    for (const auto& n : sw.nodes) EXPECT_NE(dom.out.find(n->address()), std::string::npos) << n->address() << " missing:\n" << dom.out;
    for (const char* span : {">0:2<", ">2:4<", ">4:6<"}) EXPECT_NE(dom.out.find(span), std::string::npos) << span;
    const size_t body = dom.out.find("<tbody id=\"rows\">"), body_end = dom.out.find("</tbody>", body);
    ASSERT_NE(body, std::string::npos);
    const std::string table = dom.out.substr(body, body_end - body);  // not the script's own markup
    size_t rows = 0;
    for (size_t p = table.find("class=\"node\""); p != std::string::npos; p = table.find("class=\"node\"", p + 1)) ++rows;
    EXPECT_EQ(rows, 3u);
    EXPECT_NE(table.find("class=\"coverage\""), std::string::npos);
    EXPECT_EQ(table.find("class=\"cell c0\""), std::string::npos) << "every layer is covered";
    EXPECT_EQ(table.find("unreachable"), std::string::npos);
    EXPECT_EQ(dom.out.find("id=\"updated\">now<"), std::string::npos) << "the page's script did not refresh from /v1/swarm";

    const std::filesystem::path artifacts = std::filesystem::current_path() / "test-artifacts";
    std::filesystem::create_directories(artifacts);
    const std::string png = (artifacts / "status_page.png").string();
    std::filesystem::remove(png);
    auto shot_cmd = headless(temp_path("chromium-profile-shot"));
    shot_cmd.insert(shot_cmd.end(), {"--screenshot=" + png, url});
    const auto shot = run_process(shot_cmd, 120);
    ASSERT_EQ(shot.exit_code, 0) << shot.describe(2000);
    ASSERT_TRUE(std::filesystem::exists(png));
    EXPECT_GT(std::filesystem::file_size(png), 5000u);
    std::printf("status page screenshot: %s\n", png.c_str());
}

}  // namespace
}  // namespace llmn::testing
