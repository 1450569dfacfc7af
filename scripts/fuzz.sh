#!/usr/bin/env bash
# libFuzzer targets (tests/fuzz), built with clang in build-fuzz with ASan + UBSan.
#
#   scripts/fuzz.sh                  lists the targets
#   scripts/fuzz.sh TARGET SECONDS   fuzzes TARGET for SECONDS, starting from the committed corpus
#                                    (tests/fuzz/corpus/TARGET) and regressions; new inputs go to a
#                                    working copy in build-fuzz/corpus/TARGET, crashes to
#                                    build-fuzz/artifacts/TARGET/
#   scripts/fuzz.sh TARGET 0         runs the committed corpus and the regressions once (a check)
#   scripts/fuzz.sh all 0            the same for every target
#
# Extra arguments after SECONDS go to libFuzzer (e.g. -seed=1, -max_len=65536).
# FUZZ_NO_BUILD=1 skips the build step (while other targets of build-fuzz are running).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-fuzz
targets=$(cd tests/fuzz && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//')

if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]   (SECONDS 0: run corpus + regressions once)"
  echo "targets:"; for t in $targets; do echo "  $t"; done
  exit $(( $# == 0 ? 0 : 2 ))
fi
target=$1 secs=$2; shift 2
if [ "$target" = all ]; then
  for t in $targets; do "$0" "$t" "$secs" "$@"; done
  exit 0
fi
echo "$targets" | grep -qx "$target" || { echo "fuzz.sh: no target '$target' (run without arguments for the list)" >&2; exit 2; }

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: libFuzzer needs clang, which ./scripts/setup.sh does not install (CI does not fuzz):" >&2
  echo "  sudo apt-get install clang libclang-rt-dev   # Debian 12: clang 14 and its fuzzer runtime" >&2
  exit 2
fi
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  if [ ! -f $B/CMakeCache.txt ]; then
    cmake -S . -B $B -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLLM_NODE_FUZZ=ON -DLLM_NODE_TESTS=OFF -DLLM_NODE_BENCH=OFF >/dev/null
  fi
  cmake --build $B --target "fuzz_$target" -j"${JOBS:-2}"
fi

bin=$B/tests/fuzz/fuzz_$target
seeds=tests/fuzz/corpus/$target regress=tests/fuzz/regressions/$target
dirs=()
for d in "$seeds" "$regress"; do [ -d "$d" ] && dirs+=("$d"); done
dict=()
[ -f tests/fuzz/dicts/$target.dict ] && dict=(-dict=tests/fuzz/dicts/$target.dict)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$secs" = 0 ]; then
  # Executes every input once; any crash, leak or sanitizer report fails.
  mkdir -p "$B/artifacts/$target"
  exec "$bin" -runs=0 -rss_limit_mb=2048 -artifact_prefix="$B/artifacts/$target/" "${dict[@]}" "$@" "${dirs[@]}"
fi
work=$B/corpus/$target
mkdir -p "$work" "$B/artifacts/$target"
exec "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=25 \
  -artifact_prefix="$B/artifacts/$target/" "${dict[@]}" "$@" "$work" "${dirs[@]}"
