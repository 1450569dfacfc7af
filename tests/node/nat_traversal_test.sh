#!/usr/bin/env bash
# Span nodes behind home NAT serve a client behind NAT, in network namespaces this test builds
# (tests/support/natlab/up.sh): a public bootstrap + relay node in "pub", span nodes in home1 and
# home2, the client in home3. Every address lives inside the lab; every llm-node gets --bootstrap
# to the lab's public node, so nothing is sent anywhere else.
#
#   nat_traversal_test.sh LLM_NODE MODEL CASE
#   CASE upnp:  the home routers run a real UPnP IGD (miniupnpd): the nodes map their port,
#               a peer dials back, and they are reached directly.
#   CASE relay: no UPnP, so nobody can dial in: the nodes serve through the public relay; links
#               to them are hole punched where the NAT keeps ports (home1, home2) and stay relayed
#               where it does not (home3 picks a random port per connection).
# Per case, 3 rounds: start both span nodes, generate through the swarm from home3 until it works
# (it must within 20 s of the nodes' start), compare with a single-process run (--wire-dtype f32),
# and stop the nodes. Exit 77 (skipped) without root or the lab's tools.
set -uo pipefail
LIMIT_MS=$(( ${NAT_TEST_LIMIT_S:-20} * 1000 ))  # the sanitized build (scripts/sanitize.sh) allows more
BIN=$(readlink -f "$1") MODEL=$(readlink -f "$2") CASE=$3
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../support/natlab
skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root to build network namespaces (CI runs as root)"
for t in ip iptables-legacy; do command -v $t >/dev/null || skip "$t missing (scripts/setup.sh installs it)"; done
[[ $CASE != upnp ]] || command -v miniupnpd >/dev/null || skip "miniupnpd missing (scripts/setup.sh installs miniupnpd-iptables)"

P=nt${CASE:0:1}$$_
T=$(mktemp -d /tmp/nat_traversal.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  "$lab/down.sh" "$P" >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL ($CASE): $*"
  for f in "$T"/*.err; do [[ -f $f ]] && { echo "--- $(basename "$f")"; tail -n 25 "$f"; }; done
  exit 1
}
now() { date +%s%3N; }  # milliseconds
# (background jobs call ip netns exec directly: $! is then the node itself, which ip execs)
x() { local ns=$1; shift; ip netns exec "$P$ns" "$@"; }

case $CASE in
  upnp) "$lab/up.sh" "$P" --upnp 1,2,3 >"$T/lab.log" 2>&1 || fail "lab: $(cat "$T/lab.log")" ;;
  relay) "$lab/up.sh" "$P" --symmetric 3 >"$T/lab.log" 2>&1 || fail "lab: $(cat "$T/lab.log")" ;;
  *) echo "unknown case $CASE"; exit 2 ;;
esac

BOOT=100.64.1.2:6881
common=(--no-lan -t 1 --max-memory 256)
# The public node: the DHT's bootstrap and a relay (it serves no layers).
ip netns exec "${P}pub" "$BIN" start "$MODEL" --relay-only --listen 0.0.0.0:7001 --advertise 100.64.1.2:7001 --dht-listen 0.0.0.0:6881 \
  --standalone "${common[@]}" --key "$T/pub.key" >"$T/pub.out" 2>"$T/pub.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$T/pub.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/pub.out" || fail "the public node did not start"

want=$("$BIN" generate -m "$MODEL" -p "Once upon a time" -n 24 --temp 0 2>/dev/null) || fail "local generate"
[[ -n $want ]] || fail "empty local output"

for round in 1 2 3; do
  t0=$(now)
  ip netns exec "${P}home1" env LLM_NODE_RELAY_LOG=1 "$BIN" start "$MODEL" --layers 0:3 --listen 0.0.0.0:7001 --bootstrap $BOOT --dht-listen 0.0.0.0:6881 \
    "${common[@]}" --key "$T/h1.key" >"$T/h1.$round.out" 2>"$T/h1.$round.err" &
  n1=$!
  ip netns exec "${P}home2" env LLM_NODE_RELAY_LOG=1 "$BIN" start "$MODEL" --layers 3:5 --listen 0.0.0.0:7001 --bootstrap $BOOT --dht-listen 0.0.0.0:6881 \
    "${common[@]}" --key "$T/h2.key" >"$T/h2.$round.out" 2>"$T/h2.$round.err" &
  n2=$!
  pids+=($n1 $n2)
  got="" tries=0 up1=-1 up2=-1
  while :; do
    tries=$((tries + 1))
    # When each node announced itself (its first stdout line), to tell slow nodes from slow lookups.
    [[ $up1 -lt 0 && -s $T/h1.$round.out ]] && up1=$(( $(now) - t0 ))
    [[ $up2 -lt 0 && -s $T/h2.$round.out ]] && up2=$(( $(now) - t0 ))
    got=$(x home3 env LLM_NODE_RELAY_LOG=1 timeout 30 "$BIN" generate -m "$MODEL" -p "Once upon a time" -n 24 --temp 0 \
      --wire-dtype f32 --swarm --relays 0 --bootstrap $BOOT --dht-listen 0.0.0.0:0 --no-lan 2>"$T/client.$round.err") && break
    { echo "try $tries at $(( $(now) - t0 )) ms:"; cat "$T/client.$round.err"; } >>"$T/tries.$round.err"
    (( $(now) - t0 > LIMIT_MS )) && fail "round $round (nodes announced by $up1 / $up2 ms): no generation within $((LIMIT_MS / 1000)) s of the nodes' start ($tries tries): $(tail -n 3 "$T/client.$round.err")"
    sleep 0.5
  done
  took=$(( $(now) - t0 ))
  (( took <= LIMIT_MS )) || fail "round $round (nodes announced by $up1 / $up2 ms): first generation after ${took} ms (> $((LIMIT_MS / 1000)) s)"
  [[ $got == "$want" ]] || fail "round $round: output differs from the single process: '$got' vs '$want'"
  # How each node was reached (its first stdout line; a new node may serve a client that found its
  # address from the round before even before it has announced), and how links to relayed nodes went.
  for _ in $(seq 150); do [[ -s $T/h1.$round.out && -s $T/h2.$round.out ]] && break; sleep 0.1; done
  r1=$(grep -o '"reach":"[a-z]*"' "$T/h1.$round.out" | head -1) r2=$(grep -o '"reach":"[a-z]*"' "$T/h2.$round.out" | head -1)
  links=$(cat "$T"/client.$round.err "$T"/h1.$round.err "$T"/h2.$round.err | grep -o 'link to [0-9a-f]*\.\.: .*' | sed 's/link to [0-9a-f]*\.\.: //' | sort | uniq -c | sed 's/^ *//' | paste -sd ';' -)
  printf 'round %d: generation ok after %d ms (%d tries; nodes announced by %d / %d ms); home1 %s, home2 %s; links to relayed nodes: %s\n' \
    "$round" "$took" "$tries" "$up1" "$up2" "$r1" "$r2" "${links:-none}"
  case $CASE in
    upnp)
      [[ $r1 == '"reach":"mapped"' && $r2 == '"reach":"mapped"' ]] || fail "round $round: nodes not reached through their UPnP mapping ($r1 $r2)"
      grep -q "forwards TCP" "$T/h1.$round.err" || fail "round $round: home1 does not say the router mapped its port" ;;
    relay)
      [[ $r1 == '"reach":"relayed"' && $r2 == '"reach":"relayed"' ]] || fail "round $round: nodes not relayed ($r1 $r2)"
      grep -q "not reachable at 100.64.11.2:7001: forward TCP 7001 to this machine or enable UPnP on the router; serving through relay 100.64.1.2:7001 instead" \
        "$T/h1.$round.err" || fail "round $round: home1 does not say what the user can do" ;;
  esac
  kill $n1 $n2 2>/dev/null
  wait $n1 $n2 2>/dev/null
done
if [[ $CASE == relay ]]; then
  # No relay will take it (the one named refuses): the node must say what the user can do.
  ip netns exec "${P}home1" "$BIN" start "$MODEL" --layers 0:3 --listen 0.0.0.0:7001 --bootstrap $BOOT --dht-listen 0.0.0.0:6881 \
    --relay 100.64.2.2:9 "${common[@]}" --key "$T/h1.key" >"$T/h1.norelay.out" 2>"$T/h1.norelay.err" &
  n1=$!
  pids+=($n1)
  for _ in $(seq 300); do grep -q "no relay" "$T/h1.norelay.err" && break; sleep 0.1; done
  grep -q "not reachable (.*): forward TCP 7001 to this machine or enable UPnP on the router; no relay in the swarm accepts this node yet" \
    "$T/h1.norelay.err" || fail "an unreachable node without a relay does not say what to do"
  echo "unreachable node without a relay: $(grep -o 'not reachable.*' "$T/h1.norelay.err" | cut -c1-160)"
  kill $n1 2>/dev/null; wait $n1 2>/dev/null
fi
echo "PASS ($CASE): 3 of 3 generations through nodes behind NAT, equal to the single process"
