#!/usr/bin/env bash
# What relaying costs and how often hole punching works, in the NAT lab (tests/support/natlab,
# network namespaces, root). A node serving every layer of MODEL runs
#   - in pa (public: reached directly), and
#   - in home1 behind a NAT with no port forward, served through a relay node in pub.
# The client generates N tokens from home2 (a NAT that keeps ports: punching works) and from
# home3 (a NAT with a random port per connection: punching fails, the relay stays).
# Prints ms per generated token per path (ROUNDS interleaved rounds, median), and punching's
# success count per client NAT.
#   bench/nat_bench.sh build/src/cli/llm-node models/stories260K.gguf [N=64] [ROUNDS=5]
set -euo pipefail
BIN=$(readlink -f "$1") MODEL=$(readlink -f "$2") N=${3:-64} ROUNDS=${4:-5}
lab=$(cd "$(dirname "$0")/../tests/support/natlab" && pwd)
P=nb$$_ T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; sleep 0.3; "$lab/down.sh" $P >/dev/null 2>&1; rm -rf $T' EXIT
"$lab/up.sh" $P --symmetric 3 >/dev/null
start() {  # NS ARGS... -> first stdout line's "address"
  local ns=$1; shift
  ip netns exec $P$ns "$BIN" "$@" -t 1 --key $T/$ns.key >$T/$ns.out 2>$T/$ns.err &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening $T/$ns.out 2>/dev/null && break; sleep 0.1; done
  grep -o '"address":"[^"]*' $T/$ns.out | cut -d'"' -f4
}
relay=100.64.1.2:7001
start pub serve --relay-only -m "$MODEL" --listen 0.0.0.0:7001 >/dev/null
direct=100.64.2.2:7001
start pa serve -m "$MODEL" --listen 0.0.0.0:7001 >/dev/null
relayed=$(start home1 serve -m "$MODEL" --listen 0.0.0.0:7001 --relay $relay)
sleep 1
ms_per_token() {  # NS ROUTE [flags]
  local ns=$1 route=$2; shift 2
  ip netns exec $P$ns env LLM_NODE_RELAY_LOG=1 "$BIN" generate -m "$MODEL" -p "Once upon a time" -n $N --temp 0 --json \
    --route "$route" "$@" 2>>$T/client.$ns.err | tail -1 | python3 -c '
import json, sys; s = json.loads(sys.stdin.read()); print("%.3f" % (1000.0 / s["gen_tps"]))' 2>/dev/null || echo nan
}
declare -A runs
for r in $(seq $ROUNDS); do
  runs[direct]+=" $(ms_per_token home2 $direct)"
  runs[relayed]+=" $(ms_per_token home2 $relayed --punch-ms 0)"
  runs[punched]+=" $(ms_per_token home2 $relayed)"
  runs[symmetric]+=" $(ms_per_token home3 $relayed)"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "ms per generated token (median of $ROUNDS, $N tokens, client behind NAT):"
for k in direct relayed punched symmetric; do printf '  %-10s %s   (runs:%s)\n' $k "$(echo "${runs[$k]}" | median)" "${runs[$k]}"; done
count() { grep -c "$2" $T/client.$1.err || true; }
echo "hole punching, links opened with punching on:"
echo "  client NAT keeps ports (home2): $(count home2 'direct (hole punched)') punched, $(count home2 'punching failed') kept the relay"
echo "  client NAT random port (home3): $(count home3 'direct (hole punched)') punched, $(count home3 'punching failed') kept the relay"
