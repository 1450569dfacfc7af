#!/bin/bash
# Tears down a NAT lab built by up.sh: down.sh PREFIX
# Idempotent and safe on a half-built lab: every step tolerates "already gone", and it only ever
# touches the fixed list of namespace names below (never a glob over `ip netns list`, so prefix
# "t1" cannot take down a lab prefixed "t16a_").
set -euo pipefail

if [[ $# -ne 1 || ! $1 =~ ^[A-Za-z0-9_-]{1,24}$ ]]; then
  echo "usage: $0 PREFIX   (PREFIX: 1-24 of [A-Za-z0-9_-], as given to up.sh)" >&2
  exit 2
fi
P=$1
T=/tmp/${P}natlab
names=(home1 home2 home3 nat1 nat2 nat3 pub pa pb inet)

# miniupnpd first, with SIGTERM, so it removes its own rules and closes its sockets cleanly.
# Only kill a pid from a pid file if it really runs in one of this lab's namespaces (pid reuse).
for f in "$T"/*.pid; do
  [[ -f $f ]] || continue
  pid=$(cat "$f" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || continue
  ns=$(ip netns identify "$pid" 2>/dev/null || true)
  if [[ -n $ns && $ns == "$P"* ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
done

# Then whatever else still runs inside the namespaces (listeners, test programs, the STUN
# responder): a namespace only disappears once no process holds it.
for sig in TERM KILL; do
  left=0
  for n in "${names[@]}"; do
    for pid in $(ip netns pids "$P$n" 2>/dev/null || true); do
      kill -"$sig" "$pid" 2>/dev/null || true
      left=1
    done
  done
  [[ $left == 1 ]] || break
  for _ in $(seq 20); do              # up to 2 s for them to exit
    busy=0
    for n in "${names[@]}"; do
      [[ -n $(ip netns pids "$P$n" 2>/dev/null || true) ]] && busy=1
    done
    [[ $busy == 0 ]] && break
    sleep 0.1
  done
done

# Deleting a namespace destroys its veths, and with them the peer ends in the other namespaces.
for n in "${names[@]}"; do
  ip netns del "$P$n" 2>/dev/null || true
done
rm -rf -- "$T"
exit 0
