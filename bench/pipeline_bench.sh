#!/usr/bin/env bash
# 3-node loopback pipeline vs single process, interleaved (bench/RESULTS.md).
# usage: bench/pipeline_bench.sh MODEL.gguf [THREADS] [ROUNDS]   (nodes on 127.0.0.1:7101-7103)
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
tg() { "$bin" bench -m "$model" -p 0 -n "${N_GEN:-32}" -t "$t" -r 1 -o json "$@" 2>/dev/null | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)[0]["avg_ts"])'; }
for r in $(seq "$rounds"); do
  echo "round $r: single $(tg) | 3 nodes $(tg --route "$route") | 3 nodes x4 $(tg --route "$route" --sessions 4) | 3 nodes x8 $(tg --route "$route" --sessions 8)"
done
