#!/usr/bin/env bash
# Weights through the swarm on 127.0.0.1 (bench/RESULTS.md): three nodes that hold
# MODEL seed it (layers 0:H, H:N and 0:N); a fourth node started with only the
# model id fetches the header and layers SPAN; then a client with only the id
# fetches its parts (tokenizer/header, embeddings, final norm, head) and generates.
# Prints what each downloaded against what it needs, and the rate.
# usage: bench/weights_bench.sh MODEL.gguf SPAN        e.g. bench/weights_bench.sh tinyllama-q4_0.gguf 8:12
#   MAX_DOWNLOAD=20M   cap the fetching node's rate (default: none)
set -euo pipefail
model=$1; span=$2
bin=${LLM_NODE:-build/src/cli/llm-node}
dir=$(mktemp -d); seed=127.0.0.1:$((28000 + RANDOM % 2000))
local_dht=(--no-lan --no-upnp --one-machine)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
n=$("$bin" info "$model" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')
half=$((n / 2))
spans=("0:$half" "$half:$n" "0:$n")
for i in 0 1 2; do
  if [ "$i" = 0 ]; then dht=(--standalone --dht-listen "$seed"); else dht=(--bootstrap "$seed" --dht-listen 127.0.0.1:0); fi
  "$bin" start "$model" --layers "${spans[$i]}" --listen 127.0.0.1:0 -t 1 --key "$dir/k$i" --weights-dir "$dir/seed$i" \
    "${local_dht[@]}" "${dht[@]}" >"$dir/out$i" 2>"$dir/err$i" &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 600); do grep -q listening "$dir/out$i" && break; sleep 0.5; done
  grep -q listening "$dir/out$i" || { echo "seeder $i did not start"; cat "$dir/err$i"; exit 1; }
done
id=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["model_id"])' "$dir/out0")
addr() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["address"])' "$1"; }
limit=(); [ -n "${MAX_DOWNLOAD:-}" ] && limit=(--max-download "$MAX_DOWNLOAD")
t0=$(date +%s.%N)
"$bin" start "$id" --layers "$span" --listen 127.0.0.1:0 -t 1 --key "$dir/k3" --weights-dir "$dir/fetch" "${limit[@]}" \
  "${local_dht[@]}" --bootstrap "$seed" --dht-listen 127.0.0.1:0 >"$dir/out3" 2>"$dir/err3" &
pids+=($!)
for _ in $(seq 1200); do grep -q listening "$dir/out3" && break; sleep 0.25; done
grep -q listening "$dir/out3" || { echo "the fetching node did not start"; cat "$dir/err3"; exit 1; }
join_s=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
python3 - "$dir/out3" "$join_s" <<'EOF'
import json, sys
f = json.loads(open(sys.argv[1]).readline())["fetched"]
print(f"node {f['span']}: joined in {sys.argv[2]} s; downloaded {f['total_downloaded']/2**20:.1f} MiB in all "
      f"(manifest, header, span; {f['redundant']/2**20:.2f} MiB end-game duplicates) "
      f"for {f['span_bytes']/2**20:.1f} MiB of span tensors = {f['total_downloaded']/f['span_bytes']:.3f}x; "
      f"{100*f['total_downloaded']/f['file_bytes']:.1f}% of the {f['file_bytes']/2**20:.0f} MiB file; "
      f"span fetched at {f['downloaded']/2**20/max(f['seconds'],1e-3):.0f} MiB/s in {f['seconds']:.2f} s (piece {f['piece_size']>>10} KiB)")
EOF
route="$(addr "$dir/out0"),$(addr "$dir/out1")"
t0=$(date +%s.%N)
"$bin" generate -m "$id" -p "Once upon a time" -n 4 --temp 0 -t 2 --route "$route" --weights-dir "$dir/client" \
  "${local_dht[@]}" --bootstrap "$seed" --dht-listen 127.0.0.1:0 >"$dir/gen" 2>"$dir/generr" || { cat "$dir/generr"; exit 1; }
echo "client: $(grep -o 'fetched [0-9]* KiB for [0-9]* KiB of client tensors[^)]*' "$dir/generr" | head -1)); generate took $(python3 -c "import time; print('%.1f' % (time.time() - $t0))") s"
