// The process helper the CLI tests rely on: separate stdout / stderr, the exit
// status, death by signal, no deadlock on large output, and a hard timeout.
#include <gtest/gtest.h>

#include <fstream>

#include "cli/run_process.h"
#include "support/test_support.h"

namespace llmn::testing {
namespace {

TEST(RunProcess, CapturesStdoutAndStderrSeparatelyWithTheExitStatus) {
    const ProcessResult p = run_process({"/bin/sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2; exit 3"}, 30);
    EXPECT_EQ(p.exit_code, 3) << p.describe();
    EXPECT_EQ(p.out, "out\n");
    EXPECT_EQ(p.err, "err\n");
    EXPECT_FALSE(p.timed_out);
}

TEST(RunProcess, PassesArgumentsVerbatimWithoutAShell) {
    const std::string odd = "a 'b' \"c\" $HOME \\n ; | *";
    const ProcessResult p = run_process({"/bin/sh", "-c", "printf '%s' \"$1\"", "sh", odd}, 30);
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, odd);
}

TEST(RunProcess, ReadsLargeOutputOnBothStreamsWithoutDeadlock) {
    const ProcessResult p =
        run_process({"/bin/sh", "-c", "head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2; echo done"}, 60);
    EXPECT_EQ(p.exit_code, 0) << p.status();
    EXPECT_EQ(p.out.size(), 1000005u);
    EXPECT_EQ(p.err.size(), 1000000u);
}

TEST(RunProcess, KillsTheChildAtTheTimeout) {
    const ProcessResult p = run_process({"/bin/sh", "-c", "exec sleep 30"}, 0.5);
    EXPECT_TRUE(p.timed_out);
    EXPECT_EQ(p.term_signal, SIGKILL);
    EXPECT_LT(p.seconds, 10.0);
}

TEST(RunProcess, ReportsDeathBySignal) {
    const ProcessResult p = run_process({"/bin/sh", "-c", "kill -SEGV $$"}, 30);
    EXPECT_EQ(p.exit_code, -1);
    EXPECT_EQ(p.term_signal, SIGSEGV);
}

TEST(RunProcess, MissingProgramIsASpawnFailureOr127) {
    const ProcessResult p = run_process({"/no/such/program"}, 30);
    EXPECT_TRUE(p.spawn_failed || p.exit_code == 127) << p.describe();
}

TEST(RunProcess, StdinIsEmptyByDefaultOrTheGivenFile) {
    EXPECT_EQ(run_process({"/bin/cat"}, 30).out, "");
    const std::string path = temp_path("run-process-stdin.txt");
    {
        std::ofstream f(path, std::ios::binary);
        f << "line one\nline two\n";
    }
    const ProcessResult p = run_process({"/bin/cat"}, 30, path);
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, "line one\nline two\n");
}

}  // namespace
}  // namespace llmn::testing
