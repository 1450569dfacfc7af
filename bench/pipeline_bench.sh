#!/usr/bin/env bash
# 3-node loopback pipeline vs single process, interleaved (bench/RESULTS.md).
# usage: bench/pipeline_bench.sh MODEL.gguf [THREADS] [ROUNDS]   (nodes on 127.0.0.1:7101-7103)
# Each figure is the mean of REPS (default 3) timed runs after one warm-up, as llama-bench does.
set -euo pipefail
model=$1; t=${2:-2}; rounds=${3:-3}
bin=${LLM_NODE:-build/src/cli/llm-node}
L=$("$bin" info "$model" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')
a=$((L / 3)); b=$((2 * L / 3))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for span in "0:$a" "$a:$b" "$b:$L"; do
  port=$((7101 + ${#pids[@]}))
  "$bin" serve -m "$model" --layers "$span" --listen "127.0.0.1:$port" --key "/tmp/llm-node-bench-$port.key" -t "$t" >/dev/null 2>&1 &
  pids+=($!)
done
sleep 2
route=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
tg() { "$bin" bench -m "$model" -p 0 -n "${N_GEN:-32}" -t "$t" -r "${REPS:-3}" -o json "$@" 2>/dev/null | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)[0]["avg_ts"])'; }
# MODE=ratio: only single vs 1 session, many short interleaved rounds, then the
# median and best of each (the best filters out the VM neighbours' bursts).
if [ "${MODE:-all}" = ratio ]; then
  singles=(); pipes=()
  for r in $(seq "$rounds"); do
    s=$(tg); p=$(tg --route "$route"); singles+=("$s"); pipes+=("$p")
    echo "round $r: single $s | 3 nodes $p"
  done
  python3 - "${singles[*]}" "${pipes[*]}" <<'PY'
import statistics, sys
s = [float(x) for x in sys.argv[1].split()]; p = [float(x) for x in sys.argv[2].split()]
ratios = [b / a for a, b in zip(s, p)]
print("median single %.1f, 3 nodes %.1f; best single %.1f, 3 nodes %.1f; best/best %.2f; median of round ratios %.2f"
      % (statistics.median(s), statistics.median(p), max(s), max(p), max(p) / max(s), statistics.median(ratios)))
PY
  exit 0
fi
for r in $(seq "$rounds"); do
  echo "round $r: single $(tg) | 3 nodes $(tg --route "$route") | 3 nodes x4 $(tg --route "$route" --sessions 4) | 3 nodes x8 $(tg --route "$route" --sessions 8)"
done
