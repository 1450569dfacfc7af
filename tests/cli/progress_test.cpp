// The progress line: its text (bar, percent, amounts, rate, ETA), and that it
// stays off stderr when stderr is not a terminal.
#include <gtest/gtest.h>

#include "cli/progress.h"

namespace llmn::cli {
namespace {

using Unit = ProgressBar::Unit;

TEST(ProgressLine, ShowsBarPercentAmountsRateAndEta) {
    const uint64_t mib = 1u << 20;
    const std::string s = format_progress("loading weights", 256 * mib, 1000 * mib, 2.0, Unit::bytes);
    EXPECT_EQ(s, "loading weights [######..................]  25%  256.0/1000.0 MiB  128.0 MiB/s  ETA 5.8s");
}

TEST(ProgressLine, ChoosesGiBByTheTotalAndEndsWithTheElapsedTime) {
    const uint64_t gib = 1ull << 30;
    const std::string s = format_progress("loading layers 0:32", 3 * gib, 3 * gib, 75.0, Unit::bytes);
    EXPECT_EQ(s, "loading layers 0:32 [########################] 100%  3.00/3.00 GiB  0.04 GiB/s  in 1m15s");
}

TEST(ProgressLine, CountsHaveNoUnitAndNoRateBeforeAnyTime) {
    EXPECT_EQ(format_progress("files", 3, 10, 0.0, Unit::count), "files [#######.................]  30%  3/10");
    // A total of zero is complete work, not a division by zero.
    EXPECT_EQ(format_progress("files", 0, 0, 0.5, Unit::count), "files [########################] 100%  0/0  in 0.5s");
}

TEST(ProgressBar, DrawsNothingWhenStderrIsNotATerminal) {
    ::testing::internal::CaptureStderr();  // stderr becomes a file
    EXPECT_FALSE(ProgressBar::enabled());
    {
        ProgressBar bar("work");
        for (uint64_t i = 0; i <= 1000; ++i) bar.update(i, 1000);
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace llmn::cli
