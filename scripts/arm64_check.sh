#!/usr/bin/env bash
# Cross-builds llm-node for arm64 on a Debian 12 x86-64 machine (crossbuild-essential-arm64, the
# dependencies' arm64 builds through multiarch) in ./build-arm64, then runs the tensor, model and
# engine tests and the reference checks (../shared/checks/run-all) under qemu-user-static.
# usage: ./scripts/arm64_check.sh            (as root, or with sudo available; JOBS=N, default 2)
#        SKIP_CHECKS=1: build and unit tests only
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
packages=(crossbuild-essential-arm64 qemu-user-static
          libsodium-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libtorrent-rasterbar-dev:arm64 libcpp-httplib-dev:arm64)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || $sudo_cmd dpkg --add-architecture arm64
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jobs=${JOBS:-2}
cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
      -DLLM_NODE_BENCH=OFF
cmake --build build-arm64 -j"$jobs" --target tensor_tests model_tests engine_tests llm-node

run() { qemu-aarch64-static -L /usr/aarch64-linux-gnu "$@"; }
file build-arm64/src/cli/llm-node | grep -q "ARM aarch64" || { echo "arm64_check: not an arm64 binary" >&2; exit 1; }
rc=0
for t in tensor model engine; do
  echo "== ${t}_tests (arm64, qemu)"
  run "build-arm64/tests/${t}_tests" --gtest_brief=1 || rc=1
done
if [ -z "${SKIP_CHECKS:-}" ] && [ -d ../shared/checks ]; then
  # run-all starts the binary it is given: a wrapper that starts it under qemu.
  wrapper=$(mktemp -d)/llm-node
  printf '#!/bin/sh\nexec qemu-aarch64-static -L /usr/aarch64-linux-gnu %s "$@"\n' "$(pwd)/build-arm64/src/cli/llm-node" >"$wrapper"
  chmod +x "$wrapper"
  echo "== reference checks (arm64, qemu)"
  ../shared/checks/run-all "$wrapper" || rc=1
fi
exit $rc
