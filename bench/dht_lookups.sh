#!/usr/bin/env bash
# Lost swarm lookups (bench/RESULTS.md): on 127.0.0.1, a seed node (standalone, layers 0:2) and one
# node bootstrapped from it (layers 2:5), then N fresh clients one after another, each running one
# `llm-node swarm` lookup as soon as it starts. A lookup is lost when it finds no node, partial when
# it finds one of the two. Only 127.0.0.1 traffic; every process is bounded and killed on exit.
# usage: bench/dht_lookups.sh [N=50] [TIMEOUT_S=10]    (LLM_NODE=binary, default build/src/cli/llm-node)
set -euo pipefail
n=${1:-50}; timeout_s=${2:-10}
bin=${LLM_NODE:-build/src/cli/llm-node}
model=${MODEL:-models/stories260K.gguf}
dir=$(mktemp -d); seed=127.0.0.1:$((26000 + RANDOM % 2000))
local_dht=(--no-lan --no-upnp --one-machine)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
now() { date +%s.%N; }

timeout 900 "$bin" start "$model" --layers 0:2 --listen 127.0.0.1:0 -t 1 --key "$dir/k1" --standalone --dht-listen "$seed" \
  "${local_dht[@]}" >"$dir/seed.out" 2>"$dir/seed.err" &
pids+=($!)
timeout 900 "$bin" start "$model" --layers 2:5 --listen 127.0.0.1:0 -t 1 --key "$dir/k2" --bootstrap "$seed" --dht-listen 127.0.0.1:0 \
  "${local_dht[@]}" >"$dir/node.out" 2>"$dir/node.err" &
pids+=($!)
for _ in $(seq 100); do
  grep -q listening "$dir/seed.out" && grep -q listening "$dir/node.out" && break
  sleep 0.2
done
grep -q listening "$dir/node.out" || { echo "nodes did not start"; cat "$dir"/*.err; exit 1; }
# Warm-up (not counted): until one lookup sees both nodes, so both announces have landed.
warm=0
for _ in $(seq 30); do
  if timeout 40 "$bin" swarm -m "$model" --bootstrap "$seed" --dht-listen 127.0.0.1:0 "${local_dht[@]}" --timeout 2 --json \
       2>/dev/null | grep -c node_id | grep -q '^2$'; then warm=1; break; fi
done
[ "$warm" = 1 ] || { echo "warm-up lookups never saw both nodes"; exit 1; }

lost=0; partial=0; times=()
for i in $(seq "$n"); do
  t0=$(now)
  timeout $((timeout_s + 30)) "$bin" swarm -m "$model" --bootstrap "$seed" --dht-listen 127.0.0.1:0 "${local_dht[@]}" \
    --timeout "$timeout_s" --json >"$dir/c$i" 2>/dev/null || true
  t=$(python3 -c "print('%.2f' % ($(now) - $t0))")
  found=$(grep -c node_id "$dir/c$i" || true)
  [ "$found" = 0 ] && lost=$((lost + 1))
  [ "$found" = 1 ] && partial=$((partial + 1))
  times+=("$t")
  echo "client $i: $found of 2 nodes in $t s"
done
printf '%s\n' "${times[@]}" | sort -n | python3 -c "
import sys; t = [float(x) for x in sys.stdin]
print('$n clients, --timeout $timeout_s: $lost lost (0 nodes), $partial partial (1 of 2); seconds per client: '
      'median %.2f, p90 %.2f, max %.2f' % (t[len(t) // 2], t[int(len(t) * 0.9)], t[-1]))"
