#!/usr/bin/env bash
# A three-node deployment on loopback scraped by a real Prometheus, the way docs/deployment.md
# sets it up: a temporary copy of configs/three-node.toml (the demo model, free ports, short
# heartbeats, 16-token specialisation windows), targets from `moeflow graph targets`, and
# deploy/prometheus/{prometheus.yml,alerts.yml} with 1s scrape and rule intervals. After some
# completion requests, every dashboard panel's expression and every alert's signal must return
# data (query_dashboards.py names each one that does not); then an expert node is killed and the
# MoeflowPeerDown alert must become pending or firing.
#
# Usage: prometheus_three_nodes.sh MOEFLOW_BINARY SOURCE_DIR
# Exit 77 (CTest: skipped) without prometheus (Debian package), curl, python3 or the demo model.
set -euo pipefail
BIN="$1"
SRC="$2"
MODEL="${MOEFLOW_TEST_MODEL:-$SRC/models/demo}"

skip() { echo "SKIPPED: $*"; exit 77; }
command -v prometheus >/dev/null || skip "prometheus is not installed (apt-get install prometheus)"
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
[[ -f "$MODEL/tokenizer.json" ]] || skip "no model with a tokenizer at $MODEL"

WORK="$(mktemp -d)"
declare -A PID=()  # name -> process id
status=1
cleanup() {
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  # A router node still connecting waits for its peers before it looks at signals: give up on
  # a clean stop after 5s.
  for _ in $(seq 50); do
    alive=0
    for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((status != 0)); then
    for log in "$WORK"/*.log; do
      [[ -f "$log" ]] || continue
      echo "--- $(basename "$log") (last 25 lines)"; tail -n 25 "$log"
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; exit 1; }

# The committed example with this run's model, free ports and faster timing; PORT_* variables.
ports="$(python3 "$SRC/tests/integration/three_node_graph.py" "$SRC" "$MODEL" "$WORK/graph.toml")"
eval "$ports"
"$BIN" graph check "$WORK/graph.toml"

start() {  # NAME ARGS...: start a process in the background, its output in NAME.log
  local name="$1"; shift
  "$@" > "$WORK/$name.log" 2>&1 &
  PID[$name]=$!
}
start experts-a "$BIN" serve --graph "$WORK/graph.toml" --node experts-a
start experts-b "$BIN" serve --graph "$WORK/graph.toml" --node experts-b
start router "$BIN" serve --graph "$WORK/graph.toml" --model-name demo --connect-timeout 20000

# Prometheus: the repository's configuration and alerts, scraping every second.
mkdir -p "$WORK/prometheus/targets"
cp "$SRC/deploy/prometheus/prometheus.yml" "$SRC/deploy/prometheus/alerts.yml" "$WORK/prometheus/"
sed -i -e 's/^\(\s*scrape_interval:\).*/\1 1s/' -e 's/^\(\s*evaluation_interval:\).*/\1 1s/' \
  -e 's/^\(\s*scrape_timeout:\).*/\1 1s/' "$WORK/prometheus/prometheus.yml"
"$BIN" graph targets "$WORK/graph.toml" > "$WORK/prometheus/targets/graph.json"
start prometheus prometheus --config.file="$WORK/prometheus/prometheus.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PORT_PROMETHEUS" --log.level=warn
PROM="http://127.0.0.1:$PORT_PROMETHEUS"

wait_for() {  # SECONDS WHAT COMMAND...: retry COMMAND every 0.2s
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what within ${seconds}s"
    for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null || fail "$name exited early"; done
    sleep 0.2
  done
}
API="http://127.0.0.1:$PORT_API"
wait_for 40 "the router node was not ready" curl -sf "$API/ready"
wait_for 20 "Prometheus was not ready" curl -sf "$PROM/-/ready"
echo "three nodes and Prometheus up after ${SECONDS}s"

# Traffic: a few completions, two at a time, one of them streamed.
complete() {
  curl -sf "$API/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\": \"demo\", \"prompt\": \"$1\", \"max_tokens\": 24, \"temperature\": 0$2}" > /dev/null
}
for prompt in "A man walks into a bar" "The best way to" "Once upon a time" "You will meet"; do
  complete "$prompt" "" &
  first=$!
  complete "$prompt and then" ", \"stream\": true" &
  second=$!
  if ! { wait "$first" && wait "$second"; }; then fail "a completion request failed"; fi
done
echo "8 completions answered"

# Every target scraped (up == 1 for three targets), then a few more scrapes for rate() windows.
targets_up() {
  curl -sf "$PROM/api/v1/query" --data-urlencode 'query=sum(up{job="moeflow"})' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(not r or float(r[0]["value"][1]) != 3)'
}
wait_for 15 "Prometheus did not scrape all three nodes" targets_up
sleep 4

query_status=0
python3 "$SRC/tests/integration/query_dashboards.py" "$PROM" "$SRC" || query_status=1

# Every node's own output passes `promtool check metrics` (the targets file lists them all).
for target in $(python3 -c 'import json,sys; print(" ".join(t for e in json.load(open(sys.argv[1])) for t in e["targets"]))' "$WORK/prometheus/targets/graph.json"); do
  if ! curl -sf "http://$target/metrics" | promtool check metrics > "$WORK/promtool.out" 2>&1; then
    echo "FAILED: promtool check metrics on http://$target/metrics:"; sed 's/^/  /' "$WORK/promtool.out"
    query_status=1
  else
    echo "promtool check metrics: http://$target/metrics is clean"
  fi
done

# An expert node dies: the router sees its heartbeats stop, and MoeflowPeerDown turns pending.
kill -KILL "${PID[experts-b]}"
wait "${PID[experts-b]}" 2>/dev/null || true
unset 'PID[experts-b]'
peer_down_alert() {
  curl -sf "$PROM/api/v1/alerts" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
hits = [a for a in alerts if a["labels"].get("alertname") == "MoeflowPeerDown"
        and a["labels"].get("peer") == "experts-b" and a["state"] in ("pending", "firing")]
for a in hits: print(a["state"], a["labels"])
sys.exit(not hits)'
}
alert_status=0
if wait_for_alert=$(
  deadline=$((SECONDS + 15))
  until peer_down_alert; do ((SECONDS < deadline)) || exit 1; sleep 0.5; done); then
  echo "MoeflowPeerDown: $wait_for_alert"
else
  echo "FAILED: MoeflowPeerDown did not become pending or firing within 15s of killing experts-b"
  curl -sf "$PROM/api/v1/query" --data-urlencode 'query=moeflow_peer_up' || true
  echo
  alert_status=1
fi

echo "finished after ${SECONDS}s"
if ((query_status || alert_status)); then exit 1; fi
status=0
echo "passed"
