#!/usr/bin/env bash
# Time for N nodes started together with no span to cover every layer of a model,
# on 127.0.0.1 with one bootstrap (bench/RESULTS.md).
# usage: bench/swarm_coverage.sh MODEL.gguf N MAX_MEMORY_MIB
#   STAGGER=0.5  seconds between node starts (default 0)
#   RECHECK=5    --recheck of every node (default: the product's default, 60 s after two early re-checks)
set -euo pipefail
model=$1; n=$2; mib=$3
bin=${LLM_NODE:-build/src/cli/llm-node}
dir=$(mktemp -d); seed=127.0.0.1:$((26000 + RANDOM % 2000))
local_dht=(--no-lan --no-upnp --one-machine)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
t0=$(date +%s.%N)
for i in $(seq "$n"); do
  if [ "$i" = 1 ]; then dht=(--standalone --dht-listen "$seed"); else dht=(--bootstrap "$seed" --dht-listen 127.0.0.1:0); fi
  recheck=(); [ -n "${RECHECK:-}" ] && recheck=(--recheck "$RECHECK")
  "$bin" start "$model" --listen 127.0.0.1:0 -t 1 "${recheck[@]}" --max-memory "$mib" --key "$dir/k$i" \
    "${local_dht[@]}" "${dht[@]}" >"$dir/out$i" 2>"$dir/err$i" &
  pids+=($!)
  sleep "${STAGGER:-0}"
done
for _ in $(seq 120); do
  if "$bin" swarm -m "$model" --timeout 1 --bootstrap "$seed" --dht-listen 127.0.0.1:0 "${local_dht[@]}" >"$dir/swarm" 2>/dev/null; then
    echo "$n nodes covered every layer after $(python3 -c "import time; print('%.1f' % (time.time() - $t0))") s"
    cat "$dir/swarm"
    exit 0
  fi
done
echo "not covered after 120 polls"; cat "$dir/swarm"; exit 1
