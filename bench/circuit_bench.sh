#!/usr/bin/env bash
# Generation tokens/s through 3 span nodes with 0 and 1 onion relay per side,
# on loopback or with DELAY_MS of added one-way delay per link (bench/delay_proxy.py
# in front of every node; this machine's kernel has no sch_netem).
# usage: DELAY_MS=20 bench/circuit_bench.sh MODEL.gguf [N_GEN]
set -euo pipefail
model=$1; n=${2:-32}; delay=${DELAY_MS:-0}
bin=${LLM_NODE:-build/src/cli/llm-node}
L=$("$bin" info "$model" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')
dir=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
addr=""
start() {  # start NAME ARGS... ; sets $addr to the address clients should use
  "$bin" serve -m "$model" --listen 127.0.0.1:0 -t 1 --key "$dir/$1.key" "${@:2}" >"$dir/$1.out" 2>"$dir/$1.err" &
  pids+=($!)
  for _ in $(seq 600); do grep -q listening "$dir/$1.out" 2>/dev/null && break; sleep 0.05; done
  addr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$dir/$1.out")
  if [ "$delay" != 0 ]; then
    local port=$((30000 + RANDOM % 20000))
    python3 "$(dirname "$0")/delay_proxy.py" "$port" "${addr##*:}" "$delay" >/dev/null 2>&1 &
    pids+=($!)
    sleep 0.3
    addr="127.0.0.1:$port"
  fi
}
start s1 --layers 0:$((L/3)); a=$addr
start s2 --layers $((L/3)):$((2*L/3)); b=$addr
start s3 --layers $((2*L/3)):$L; c=$addr
start r1 --relay-only; r1=$addr
start r2 --relay-only; r2=$addr
gen() { "$bin" generate -m "$model" -p "Once upon a time" -n "$n" --temp 0 -t 1 --json --route "$a,$b,$c" "$@" 2>/dev/null | tail -1 |
        python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["gen_tps"])'; }
for round in 1 2 3; do
  echo "delay ${delay} ms, round $round: 0 relays $(gen) tok/s | 1 relay per side $(gen --entry-relay "$r1" --exit-relay "$r2") tok/s"
done
