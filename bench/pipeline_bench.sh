#!/usr/bin/env bash
# 3-node loopback pipeline vs single process (bench/RESULTS.md, issue "layer spans over the network").
# usage: bench/pipeline_bench.sh MODEL.gguf [THREADS]   (starts 3 nodes on 127.0.0.1:7101-7103)
set -euo pipefail
model=$1; t=${2:-2}
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
echo "single process:"; "$bin" bench -m "$model" -p 64 -n 32 -t "$t" -r 3 2>/dev/null | tail -n 2
echo "3 nodes, 1 session:"; "$bin" bench -m "$model" -p 64 -n 32 -t "$t" -r 3 --route "$route" 2>/dev/null | tail -n 2
for s in 4 8; do
  echo "3 nodes, $s sessions:"; "$bin" bench -m "$model" -p 0 -n 32 -t "$t" -r 3 --route "$route" --sessions "$s" 2>/dev/null | tail -n 1
done
