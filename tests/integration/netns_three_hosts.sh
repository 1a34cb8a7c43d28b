#!/usr/bin/env bash
# Three hosts made with network namespaces: a router host and two expert hosts, each expert host
# joined to the router host by a veth pair. Addresses exist only inside the namespaces (127.77.x.y
# with route_localnet, so nothing outside this machine is ever addressed). The expert hosts run
# `moeflow serve`, the router host runs `moeflow generate --graph`, and the tokens must equal the
# reference greedy tokens of the golden checkpoint.
#
# Usage: netns_three_hosts.sh MOEFLOW_BINARY SOURCE_DIR
# Exit 77 (CTest: skipped) when network namespaces cannot be made here (not root, no iproute2).
set -euo pipefail
BIN="$1"
SRC="$2"
FAMILY="${FAMILY:-mixtral}"
TAG="mf$$"
NS_R="$TAG-router" NS_A="$TAG-a" NS_B="$TAG-b"
WORK="$(mktemp -d)"

cleanup() {
  for pid in ${PIDS:-}; do kill "$pid" 2>/dev/null || true; done
  # Anything still running inside the namespaces (ip netns del would orphan it).
  for ns in "$NS_R" "$NS_A" "$NS_B"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for ns in "$NS_R" "$NS_A" "$NS_B"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

skip() { echo "SKIPPED: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "network namespaces need root"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns add "$NS_R" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
ip netns add "$NS_A"
ip netns add "$NS_B"

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }
for ns in "$NS_R" "$NS_A" "$NS_B"; do
  in_ns "$ns" ip link set lo up
  in_ns "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1
done
# link NAME_IN_ROUTER NAME_IN_HOST HOST_NS SUBNET
link() {
  ip link add "$1" type veth peer name "$2"
  ip link set "$1" netns "$NS_R"
  ip link set "$2" netns "$3"
  in_ns "$NS_R" ip addr add "127.77.$4.1/24" dev "$1"
  in_ns "$3" ip addr add "127.77.$4.2/24" dev "$2"
  in_ns "$NS_R" sysctl -qw "net.ipv4.conf.$1.route_localnet=1"
  in_ns "$3" sysctl -qw "net.ipv4.conf.$2.route_localnet=1"
  in_ns "$NS_R" ip link set "$1" up
  in_ns "$3" ip link set "$2" up
}
link "${TAG}ra" "${TAG}a" "$NS_A" 1
link "${TAG}rb" "${TAG}b" "$NS_B" 2

MODEL="$SRC/tests/golden/$FAMILY"
EXPERTS=$(python3 -c "import json; c=json.load(open('$MODEL/config.json')); print(c.get('num_local_experts') or c.get('num_experts') or c.get('n_routed_experts'))")
HALF=$((EXPERTS / 2))
cat > "$WORK/graph.toml" <<TOML
[model]
path = "$MODEL"

[timeouts]
heartbeat_ms = 100
peer_down_ms = 1000

[nodes.router]
host = "127.77.1.1"
control_port = 5550
data_port = 5551
router = true

[nodes.experts-a]
host = "127.77.1.2"
control_port = 5560
data_port = 5561

[nodes.experts-b]
host = "127.77.2.2"
control_port = 5570
data_port = 5571

[shards.a]
node = "experts-a"
experts = "0-$((HALF - 1))"

[shards.b]
node = "experts-b"
experts = "$HALF-$((EXPERTS - 1))"
TOML
"$BIN" graph check "$WORK/graph.toml"

# `ip netns exec` itself, not the in_ns function (a backgrounded function is a subshell, and $!
# would be that subshell rather than moeflow).
ip netns exec "$NS_A" "$BIN" serve --graph "$WORK/graph.toml" --node experts-a > "$WORK/a.log" 2>&1 &
PIDS="$!"
ip netns exec "$NS_B" "$BIN" serve --graph "$WORK/graph.toml" --node experts-b > "$WORK/b.log" 2>&1 &
PIDS="$PIDS $!"

failures=0
count=$(python3 -c "import json; print(len(json.load(open('$MODEL/reference.json'))['prompts']))")
for ((i = 0; i < count; i++)); do
  prompt=$(python3 -c "import json; r=json.load(open('$MODEL/reference.json')); print(','.join(map(str, r['prompts'][$i])))")
  want=$(python3 -c "import json; r=json.load(open('$MODEL/reference.json')); print(','.join(map(str, r['greedy'][$i])))")
  steps=$(python3 -c "import json; r=json.load(open('$MODEL/reference.json')); print(len(r['greedy'][$i]))")
  got=$(in_ns "$NS_R" "$BIN" generate --quiet --graph "$WORK/graph.toml" --prompt-ids "$prompt" \
        --max-tokens "$steps" --connect-timeout 10000) || { echo "generate failed"; failures=$((failures + 1)); continue; }
  if [[ "$got" == "$want" ]]; then
    echo "prompt $i: $got (matches the reference)"
  else
    echo "prompt $i: got $got, want $want"
    failures=$((failures + 1))
  fi
done
# The expert hosts must not be reachable from outside their namespaces' links: from the router
# namespace, experts-b's address answers; from experts-a's namespace it does not (no route).
if in_ns "$NS_A" python3 -c "import socket; s=socket.socket(); s.settimeout(1); s.connect(('127.77.2.2', 5571))" 2>/dev/null; then
  echo "experts-a can reach experts-b directly; the topology is not what the test means"
  failures=$((failures + 1))
fi
if ((failures)); then
  echo "--- experts-a log"; cat "$WORK/a.log"; echo "--- experts-b log"; cat "$WORK/b.log"
  echo "0 passed, $failures failed"
  exit 1
fi
echo "$count passed, 0 failed"
