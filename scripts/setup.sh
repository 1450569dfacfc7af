#!/usr/bin/env bash
# Installs llm-node's Debian 12 build dependencies and builds it (Release) in ./build.
# usage: ./scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config python3
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and microbenchmarks
  nlohmann-json3-dev                           # JSON in tests (reference files)
  libsodium-dev libasio-dev                    # secure links (ISC) and networking (BSL)
  libtorrent-rasterbar-dev                     # swarm discovery: BitTorrent DHT, LSD, UPnP (BSD-3)
  iproute2                                     # network namespaces for the LAN discovery test
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jobs=${JOBS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
echo "built: build/src/cli/llm-node"
