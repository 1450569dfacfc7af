#!/usr/bin/env bash
# Verification (issue 19): the statistical cases of tests/node/verify_test.cpp at full size
# (200 runs each, 10,400 honest positions on both hops), then the cost of audits on a
# pipeline: node CPU time and client tokens/s with --verify 0 and the default, same nodes.
# usage: bench/verify_bench.sh [MODEL.gguf for the overhead part] (default models/stories260K.gguf)
# env: RUNS (test runs), SKIP_TESTS=1, RATES ("0 0.1 every:0.2": a rate, sampled mode, or every:RATE
# for --verify-every), ROUNDS (3), N_GEN (200), ODD_ISA=avx2|scalar (the second node of each span,
# one of them the replica, runs that kernel set).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LLM_NODE:-build/src/cli/llm-node}
MODEL=${1:-models/stories260K.gguf}
N_GEN=${N_GEN:-200}

[ -n "${SKIP_TESTS:-}" ] || LLM_NODE_VERIFY_RUNS=${RUNS:-200} build/tests/node_tests --gtest_filter='Verify.*' 2>&1 | grep -E '^verify:|OK \]|FAILED'

n_layer=$("$BIN" info "$MODEL" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')
half=$((n_layer / 2))
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
addrs=()
for span in "0:$half" "0:$half" "$half:$n_layer" "$half:$n_layer"; do
  i=${#addrs[@]}
  if [ $((i % 2)) = 1 ] && [ -n "${ODD_ISA:-}" ]; then export LLM_NODE_ISA=$ODD_ISA; else unset LLM_NODE_ISA; fi
  "$BIN" serve -m "$MODEL" --layers "$span" --listen 127.0.0.1:0 -t 1 --key "$dir/k$i" >"$dir/out$i" 2>"$dir/err$i" &
  echo $! >"$dir/pid$i"
  for _ in $(seq 100); do grep -q listening "$dir/out$i" 2>/dev/null && break; sleep 0.1; done
  addrs+=("$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$dir/out$i")")
done
nodes=$(IFS=,; echo "${addrs[*]}")
cpu() {  # user+sys clock ticks of the four nodes
  local t=0; for i in 0 1 2 3; do t=$((t + $(node_cpu $i))); done; echo $t
}
node_cpu() { awk '{print $14 + $15}' /proc/$(cat "$dir/pid$1")/stat; }
for round in $(seq ${ROUNDS:-3}); do
  for rate in ${RATES:-0 0.1 every:0.2}; do
    flags=(--verify "${rate#every:}")
    [ "${rate#every:}" = "$rate" ] || flags+=(--verify-every)
    c0=$(cpu); t0=$(date +%s.%N); per0=$(for i in 0 1 2 3; do node_cpu $i; done)
    TIMEFORMAT=%U+%S
    { time "$BIN" generate -m "$MODEL" --nodes "$nodes" "${flags[@]}" -n "$N_GEN" --temp 0 --ignore-eos -p "Once upon a time" >"$dir/gen.txt" 2>"$dir/gen.log" ; } 2>"$dir/time"
    client=$(python3 -c "print(f'{$(cat "$dir/time"):.2f}')")
    t1=$(date +%s.%N); c1=$(cpu); per1=$(for i in 0 1 2 3; do node_cpu $i; done)
    [ -z "${PER_NODE:-}" ] || echo "  per node cpu ticks: $(paste -d' ' <(echo "$per1") <(echo "$per0") | awk '{printf "%d ", $1-$2}')"
    alarms=$(grep -c caught "$dir/gen.log" || true)
    echo "round $round verify $rate: $(python3 -c "print(f'{$N_GEN/($t1-$t0):.1f} tok/s (wall, incl. start), node cpu {($c1-$c0)/100:.2f} s')"), client cpu $client s, $alarms alarms, text $(md5sum <"$dir/gen.txt" | cut -c1-8)"
  done
done
