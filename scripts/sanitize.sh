#!/usr/bin/env bash
# Builds llm-node with AddressSanitizer + UndefinedBehaviorSanitizer in ./build-asan and runs the
# whole ctest suite there; the llm-node processes that the integration tests spawn are sanitized too.
# usage: ./scripts/sanitize.sh [extra ctest args]     (JOBS=N sets the build parallelism, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-2}
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DLLM_NODE_SANITIZE=address,undefined -DLLM_NODE_BENCH=OFF
cmake --build build-asan -j"$jobs"

# Left out here (they pass in the plain build):
# - ReferenceCli.Tokenize*: one llm-node process per reference text and variant (~600 processes,
#   about half the sanitized suite's time); TokenizerReference.AllReferenceTextsAndVariants runs the
#   same texts and variants in-process under the sanitizers, and CliTokenize.* the command itself.
# - HostilePeer.AtItsFdLimit*: the node runs out of fds on purpose, and UBSan's vptr check then
#   cannot probe memory (it needs a pipe) and reports a false "invalid vptr".
exclude='ReferenceCli\.Tokenize|HostilePeer\.AtItsFdLimit'

# quarantine_size_mb: ASan keeps 256 MB of freed memory by default, which the RSS bounds of the
# hostile tests (a flood must not grow a node by more than its queue caps) would count as held.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export NAT_TEST_LIMIT_S=60  # sanitized nodes start slower: the 20-s promise is the plain build's
ctest --test-dir build-asan --output-on-failure -j"$jobs" -E "$exclude" "$@"
