#!/usr/bin/env bash
# Installs llm-node's Debian 12 build dependencies and builds it (Release) in ./build.
# usage: ./scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config python3
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and microbenchmarks
  nlohmann-json3-dev                           # JSON: API requests, reference files (MIT)
  libcpp-httplib-dev                           # the OpenAI-compatible HTTP API (MIT)
  nodejs chromium                              # API tests: the openai npm client, the status page headless
  libsodium-dev libasio-dev                    # secure links (ISC) and networking (BSL)
  libtorrent-rasterbar-dev                     # swarm discovery: BitTorrent DHT, LSD, UPnP (BSD-3)
  iproute2                                     # network namespaces for the LAN discovery and NAT tests
  iptables miniupnpd-iptables                  # NAT test: home routers (MASQUERADE) with a real UPnP IGD (BSD-3)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# npm ships inside some nodejs builds (NodeSource); Debian packages it apart.
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends npm
fi
# The official openai client for the API tests, pinned by tests/api/js/package-lock.json.
(cd tests/api/js && npm ci --no-audit --no-fund --loglevel=error) ||
  echo "setup: npm ci failed: the openai client test will skip" >&2

jobs=${JOBS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
echo "built: build/src/cli/llm-node"
