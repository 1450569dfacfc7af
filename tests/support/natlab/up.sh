#!/bin/bash
# A NAT lab in network namespaces, for tests (run as root):
#
#   up.sh PREFIX [--upnp LIST] [--symmetric LIST]      LIST: comma-separated router numbers, e.g. 1,2
#   down.sh PREFIX
#
# Every namespace name starts with PREFIX (e.g. t16a_), so several labs coexist, and none collides
# with ../shared/natlab (same layout, unprefixed):
#   PREFIXinet            the "internet": a router for 100.64.0.0/10, one /24 per attached host
#   PREFIXpub, pa, pb     public hosts 100.64.{1,2,3}.2 (gateway .1 in inet)
#   PREFIXnat1..3         home routers: WAN eth0 100.64.{11,12,13}.2, LAN lan0 192.168.N.1/24;
#                         MASQUERADE, FORWARD drops all but lan->wan and replies, stealth WAN
#                         (INPUT on eth0 drops all but replies)
#   PREFIXhome1..3        home hosts 192.168.N.2, default route via 192.168.N.1
# --upnp LIST       runs miniupnpd (UPnP IGD on http://192.168.N.1:5000, NAT-PMP/PCP on :5351) in
#                   those routers, with its MINIUPNPD chains; checks SSDP and NAT-PMP from homeN
# --symmetric LIST  those routers MASQUERADE with --random-fully: a new, random public port per
#                   connection (endpoint-dependent mapping), so hole punching cannot predict it
# Files (miniupnpd configs, logs, leases, pid files): /tmp/PREFIXnatlab/.
# Nothing is connected to the root namespace and no address exists outside the lab's namespaces.
# Run things inside with: ip netns exec PREFIXhome1 CMD...
# Needs root, iproute2, iptables (its legacy backend), python3, and miniupnpd-iptables for --upnp.
# Clients: miniupnpc's upnpc calls an IGD with a 100.64/10 external address "not connected" and
# stops unless given -i; libtorrent's UPnP and NAT-PMP/PCP take it as is.
set -eEuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "PREFIX: 1-24 of [A-Za-z0-9_-]; LIST: numbers from 1,2,3" >&2
  exit 2
}
[[ $# -ge 1 && $1 =~ ^[A-Za-z0-9_-]{1,24}$ ]] || usage
P=$1; shift
upnp=() sym=() mpid=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --upnp|--symmetric)
      [[ $# -ge 2 && $2 =~ ^[123](,[123])*$ ]] || usage
      IFS=, read -ra l <<<"$2"
      if [[ $1 == --upnp ]]; then upnp+=("${l[@]}"); else sym+=("${l[@]}"); fi
      shift 2 ;;
    *) usage ;;
  esac
done
# sorted, each router once (also handy for the summary line)
mapfile -t upnp < <(printf '%s\n' "${upnp[@]}" | sort -u | grep .)
mapfile -t sym < <(printf '%s\n' "${sym[@]}" | sort -u | grep .)
T=/tmp/${P}natlab

# On any failure: say where, show the miniupnpd logs (the usual culprit), remove the half-built
# lab (unless NATLAB_KEEP_ON_FAILURE=1, for debugging) and exit 1.
die() {
  trap - ERR
  echo "natlab up.sh $P: FAILED: $*" >&2
  for f in "$T"/miniupnpd.*.log; do
    [[ -f $f ]] && { echo "--- last lines of $f:" >&2; tail -n 15 "$f" >&2; }
  done
  if [[ ${NATLAB_KEEP_ON_FAILURE:-0} == 1 ]]; then
    echo "natlab up.sh $P: lab left as is; remove it with $here/down.sh $P" >&2
  else
    "$here/down.sh" "$P" >/dev/null 2>&1 || true
  fi
  exit 1
}
trap 'die "line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, iptables)"
for t in ip iptables-legacy; do
  command -v $t >/dev/null || die "$t not found (scripts/setup.sh installs iproute2 and iptables)"
done
# Debian's python3 directly: a pyenv shim first in PATH costs ~0.8 s per start.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3) || die "python3 not found"
if [[ ${#upnp[@]} -gt 0 ]]; then
  command -v miniupnpd >/dev/null || die "miniupnpd not found (apt-get install miniupnpd-iptables)"
fi

"$here/down.sh" "$P"          # clean slate: a previous run may have died half way
mkdir -p "$T"

x() { ip netns exec "$@"; }          # for ip itself, "ip -n NS" is cheaper
# iptables-legacy, not the default iptables-nft: Debian's miniupnpd-iptables writes its rules
# through libip4tc, i.e. the legacy x_tables backend. With the base rules in nft, the nft FORWARD
# DROP would still drop what the legacy MINIUPNPD chain accepts (each backend's hooks run), and
# the init script Debian ships refuses the same mismatch.
ipt() { local ns=$1; shift; ip netns exec "$ns" iptables-legacy -w "$@"; }
newns() {
  ip netns add "$P$1"
  ip -n "$P$1" link set lo up
}

newns inet
x "${P}inet" sysctl -qw net.ipv4.ip_forward=1
# A host hung off inet on its own /24: NAME gets eth0 = 100.64.I.2, inet gets in-NAME = .1.
# Creating both veth ends directly in their namespaces keeps them out of the root namespace.
pubhost() {
  local h=$1 i=$2
  newns "$h"
  ip link add "in-$h" netns "${P}inet" type veth peer name eth0 netns "$P$h"
  ip -n "${P}inet" addr add "100.64.$i.1/24" dev "in-$h"
  ip -n "${P}inet" link set "in-$h" up
  ip -n "$P$h" addr add "100.64.$i.2/24" dev eth0
  ip -n "$P$h" link set eth0 up
  ip -n "$P$h" route add default via "100.64.$i.1"
}
for p in pub:1 pa:2 pb:3 nat1:11 nat2:12 nat3:13; do pubhost "${p%:*}" "${p#*:}"; done

for n in 1 2 3; do
  r=${P}nat$n h=${P}home$n
  newns home$n
  ip link add lan0 netns "$r" type veth peer name eth0 netns "$h"
  ip -n "$r" addr add "192.168.$n.1/24" dev lan0
  ip -n "$r" link set lan0 up
  ip -n "$h" addr add "192.168.$n.2/24" dev eth0
  ip -n "$h" link set eth0 up
  # The default route also carries SSDP's multicast (239.255.255.250) out of eth0 to the router.
  ip -n "$h" route add default via "192.168.$n.1"
  x "$r" sysctl -qw net.ipv4.ip_forward=1
  masq=(-j MASQUERADE)
  [[ " ${sym[*]} " == *" $n "* ]] && masq+=(--random-fully)
  ipt "$r" -t nat -A POSTROUTING -o eth0 -s "192.168.$n.0/24" "${masq[@]}"
  ipt "$r" -P FORWARD DROP
  ipt "$r" -A FORWARD -i lan0 -o eth0 -j ACCEPT
  ipt "$r" -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ipt "$r" -A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ipt "$r" -A INPUT -i eth0 -j DROP          # stealth WAN, like most home routers
done

if [[ ${#upnp[@]} -gt 0 ]]; then
  # miniupnpd 2.3.1 refuses to forward ports when its WAN address is "reserved", and 100.64/10
  # (RFC 6598) is on its list; ext_ip= rejects such addresses too, and ext_allow_private_ipv4
  # only exists from 2.3.9 on. Its way out is STUN: when a STUN server sees the WAN address
  # unchanged and answers every request, it takes that address as public and enables forwarding.
  # So inet (the "ISP") runs a minimal STUN responder on UDP 3478 that answers every Binding
  # request from the address it was sent to, with the observed address (XOR-MAPPED-ADDRESS),
  # ignoring CHANGE-REQUEST; the replies pass the stealth WAN as ESTABLISHED.
  cat >"$T/stun.py" <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 3478))
while True:
    d, (ip, port) = s.recvfrom(2048)
    if len(d) < 20 or d[:2] != b"\x00\x01":
        continue
    xip = struct.unpack("!I", socket.inet_aton(ip))[0] ^ 0x2112A442
    attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, port ^ 0x2112, xip)
    s.sendto(struct.pack("!HH", 0x0101, len(attr)) + d[4:20] + attr, (ip, port))
PY
  # Background jobs are plain commands, not the x function: a function in a background subshell
  # would inherit the ERR trap and run die (and down.sh) there when its process exits non-zero.
  ip netns exec "${P}inet" setsid "$PY" "$T/stun.py" </dev/null >"$T/stun.log" 2>&1 &
  echo $! >"$T/stun.pid"
  for _ in $(seq 50); do
    [[ -n $(ss -N "${P}inet" -Hlun 'sport = :3478') ]] && break
    sleep 0.1
  done
  [[ -n $(ss -N "${P}inet" -Hlun 'sport = :3478') ]] || die "STUN responder did not start (see $T/stun.log)"
fi

for n in "${upnp[@]}"; do
  r=${P}nat$n
  # The chains and hooks of /etc/miniupnpd/iptables_init.sh (that script needs
  # miniupnpd_functions.sh from the "miniupnpd" package, which is not installed): DNAT in nat
  # PREROUTING, the matching ACCEPT in FORWARD ahead of its DROP policy, and source-port
  # preserving SNAT in POSTROUTING ahead of our MASQUERADE.
  ipt "$r" -t nat -N MINIUPNPD
  ipt "$r" -t nat -I PREROUTING -i eth0 -j MINIUPNPD
  ipt "$r" -t mangle -N MINIUPNPD
  ipt "$r" -t mangle -I PREROUTING -i eth0 -j MINIUPNPD
  ipt "$r" -t filter -N MINIUPNPD
  ipt "$r" -t filter -I FORWARD -i eth0 ! -o eth0 -j MINIUPNPD
  ipt "$r" -t nat -N MINIUPNPD-POSTROUTING
  ipt "$r" -t nat -I POSTROUTING -o eth0 -j MINIUPNPD-POSTROUTING
  cat >"$T/miniupnpd.nat$n.conf" <<EOF
# natlab $P nat$n: UPnP IGD + NAT-PMP/PCP for 192.168.$n.0/24
ext_ifname=eth0
listening_ip=lan0
ipv6_disable=yes
http_port=5000
enable_upnp=yes
enable_natpmp=yes
# clients may only map ports to their own address
secure_mode=yes
# the WAN address is in 100.64/10, see the STUN responder in up.sh
ext_perform_stun=yes
ext_stun_host=100.64.1$n.1
ext_stun_port=3478
lease_file=$T/miniupnpd.nat$n.leases
# no minissdpd: miniupnpd answers SSDP itself
minissdpdsocket=$T/minissdpd.nat$n.sock
system_uptime=yes
notify_interval=60
clean_ruleset_interval=600
uuid=$(cat /proc/sys/kernel/random/uuid)
friendly_name=natlab $P nat$n
allow 1024-65535 192.168.$n.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  # -d: stays in the foreground (setsid detaches it from this script) and logs to stderr, which
  # goes to the log file since there is no syslog here; -P: the pid file down.sh kills.
  ip netns exec "$r" setsid miniupnpd -d -f "$T/miniupnpd.nat$n.conf" -P "$T/miniupnpd.nat$n.pid" \
    </dev/null >"$T/miniupnpd.nat$n.log" 2>&1 &
  mpid[n]=$!
done

# Wait for each miniupnpd to finish starting: its STUN round trip, then its sockets. A failed STUN
# makes it exit ("Performing STUN failed. EXITING", after 3 x 3 s without an answer).
for n in "${upnp[@]}"; do
  log=$T/miniupnpd.nat$n.log
  for _ in $(seq 150); do
    grep -q "Listening for NAT-PMP/PCP traffic" "$log" && break
    kill -0 "${mpid[$n]}" 2>/dev/null || die "miniupnpd in ${P}nat$n exited (see $log)"
    sleep 0.1
  done
  grep -q "Listening for NAT-PMP/PCP traffic" "$log" || die "miniupnpd in ${P}nat$n did not start in 15 s"
  grep -q "Port forwarding is now enabled" "$log" ||
    die "miniupnpd in ${P}nat$n did not enable port forwarding (see $log)"
done

# Check each IGD from its home host, as clients will use it: SSDP M-SEARCH to the multicast
# group (the reply and the description XML must come from the router), then NAT-PMP's public
# address request to the gateway, which must answer with the router's WAN address.
for n in "${upnp[@]}"; do
  x "${P}home$n" "$PY" - "192.168.$n.1" "100.64.1$n.2" <<'PY' ||
import socket, sys, time, urllib.request
gw, wan = sys.argv[1], sys.argv[2]
def fail(msg):
    sys.exit(f"IGD on {gw}: {msg}")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
search = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
          b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
loc, deadline = None, time.time() + 5
while loc is None and time.time() < deadline:
    s.sendto(search, ("239.255.255.250", 1900))
    try:
        while loc is None:
            d, a = s.recvfrom(4096)
            for line in d.decode(errors="replace").split("\r\n"):
                if a[0] == gw and line.lower().startswith("location:"):
                    loc = line.split(":", 1)[1].strip()
    except socket.timeout:
        pass
if loc is None:
    fail("no SSDP reply to M-SEARCH on 239.255.255.250:1900")
desc = urllib.request.urlopen(loc, timeout=3).read().decode()
if "WANIPConnection" not in desc:
    fail(f"{loc} does not describe a WANIPConnection")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.5)
for _ in range(6):
    u.sendto(b"\0\0", (gw, 5351))
    try:
        r = u.recv(64)
        break
    except socket.timeout:
        r = b""
if len(r) < 12 or r[1] != 128 or r[2:4] != b"\0\0":
    fail(f"bad NAT-PMP public address reply {r!r}")
if socket.inet_ntoa(r[8:12]) != wan:
    fail(f"NAT-PMP says the public address is {socket.inet_ntoa(r[8:12])}, not {wan}")
PY
    die "UPnP check from ${P}home$n failed (see $T/miniupnpd.nat$n.log)"
done

echo "natlab $P up: ${P}{inet,pub,pa,pb,nat1..3,home1..3}; UPnP on nat: ${upnp[*]:-none};" \
  "random-fully on nat: ${sym[*]:-none}; files in $T"
