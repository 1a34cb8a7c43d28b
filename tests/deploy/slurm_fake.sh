#!/usr/bin/env bash
# The deploy_slurm test: deploy/slurm/moeflow.sbatch run as Slurm would run it, with stand-ins
# for scontrol (the allocation's host names) and srun (runs the step here), on a copy of
# configs/three-node.toml with free loopback ports.
#   - order mode on hosts "localhost" x3: the graph copy gets 127.0.0.1 as every node's host,
#     one srun per node (expert nodes first), the targets file is written, the API answers;
#     SIGTERM (what scancel sends) stops every node and removes the copy and the targets;
#   - hostname mode on host "localhost", whose address is every node's host: the graph itself;
#   - refusals: too few hosts or hosts that do not resolve (order), a node's host not in the
#     allocation (hostname).
#
# Usage: slurm_fake.sh MOEFLOW_BINARY SOURCE_DIR
# Exit 77 (CTest: skipped) without curl or the demo model.
set -euo pipefail
BIN="$1"
SRC="$2"
MODEL="${MOEFLOW_TEST_MODEL:-$SRC/models/demo}"
skip() { echo "SKIPPED: $*"; exit 77; }
command -v curl >/dev/null || skip "curl is not installed"
[[ -f "$MODEL/tokenizer.json" ]] || skip "no model with a tokenizer at $MODEL"
getent ahostsv4 localhost >/dev/null || skip "localhost does not resolve (getent ahostsv4)"

WORK="$(mktemp -d)"
JOB_PID=""
status=1
cleanup() {
  if [[ -n "$JOB_PID" ]] && kill -0 "$JOB_PID" 2>/dev/null; then
    kill -TERM "$JOB_PID" 2>/dev/null || true
    sleep 3
  fi
  # Any step still running (the job script failed to stop it), by the ids the fake srun noted.
  if [[ -f "$WORK/srun.log.pids" ]]; then
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$WORK/srun.log.pids"
  fi
  wait 2>/dev/null || true
  if ((status != 0)); then
    for log in "$WORK"/*.log "$WORK"/logs/*.log; do
      [[ -f "$log" ]] && { echo "--- $log"; tail -n 20 "$log"; }
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; exit 1; }

mkdir -p "$WORK/bin" "$WORK/graph" "$WORK/targets" "$WORK/logs"
cat > "$WORK/bin/scontrol" <<'SH'
#!/usr/bin/env bash
# scontrol show hostnames LIST: the stand-in allocation, one host a line.
[[ "$1 $2" == "show hostnames" ]] || { echo "fake scontrol: unexpected $*" >&2; exit 1; }
tr ' ' '\n' <<< "$FAKE_HOSTS"
SH
cat > "$WORK/bin/srun" <<'SH'
#!/usr/bin/env bash
# srun OPTIONS... COMMAND...: records the call and its process id, drops the options and runs
# the step here.
echo "srun $*" >> "$FAKE_SRUN_LOG"
echo "$$" >> "$FAKE_SRUN_LOG.pids"
while [[ "${1:-}" == --* ]]; do shift; done
exec "$@"
SH
chmod +x "$WORK/bin/scontrol" "$WORK/bin/srun"
eval "$(python3 "$SRC/tests/integration/three_node_graph.py" "$SRC" "$MODEL" "$WORK/graph/cluster.toml")"

run_job() {  # HOSTS MAP: the job script in the background, its output in job.log
  env PATH="$WORK/bin:$PATH" FAKE_HOSTS="$1" MOEFLOW_SLURM_MAP="$2" FAKE_SRUN_LOG="$WORK/srun.log" \
    SLURM_JOB_ID=4242 SLURM_JOB_NODELIST=fake SLURM_CPUS_ON_NODE=2 MOEFLOW_BIN="$BIN" \
    MOEFLOW_TARGETS_DIR="$WORK/targets" MOEFLOW_LOG_DIR="$WORK/logs" \
    bash "$SRC/deploy/slurm/moeflow.sbatch" "$WORK/graph/cluster.toml" > "$WORK/job.log" 2>&1 &
  JOB_PID=$!
}

API="http://127.0.0.1:$PORT_API"
copy="$WORK/graph/cluster.slurm-4242.toml"

wait_ready() {  # until the router node answers /ready
  local deadline=$((SECONDS + 60))
  until curl -sf "$API/ready" >/dev/null 2>&1; do
    kill -0 "$JOB_PID" 2>/dev/null || fail "the job ended early: $(cat "$WORK/job.log")"
    ((SECONDS < deadline)) || fail "the router node was not ready within 60s"
    sleep 0.2
  done
  curl -sf "$API/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model": "demo", "prompt": "Hello", "max_tokens": 4}' >/dev/null ||
    fail "the API does not answer a completion"
}

stop_job() {  # SIGTERM, as scancel sends it: every node stops, the job's files go
  kill -TERM "$JOB_PID"
  local deadline=$((SECONDS + 20))
  while kill -0 "$JOB_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "the job did not stop within 20s of SIGTERM"
    sleep 0.2
  done
  wait "$JOB_PID" || fail "the job exited with status $? after SIGTERM"
  JOB_PID=""
  while read -r pid; do
    if kill -0 "$pid" 2>/dev/null; then fail "node process $pid still runs after the job stopped"; fi
  done < "$WORK/srun.log.pids"
  [[ ! -e "$copy" ]] || fail "the graph copy was not removed"
  [[ ! -e "$WORK/targets/slurm-4242.json" ]] || fail "the targets file was not removed"
  grep -q "moeflow.sbatch: stopped" "$WORK/job.log" || fail "no clean stop in the job's output"
}

# --- refusals ---
run_job "localhost localhost" order
wait "$JOB_PID" && fail "order mode ran three nodes on two hosts"
grep -q "the graph has 3 nodes (experts-a experts-b router) but the job has 2 hosts" "$WORK/job.log" ||
  fail "order mode with too few hosts: $(cat "$WORK/job.log")"
run_job "nowhere-1.invalid nowhere-2.invalid nowhere-3.invalid" order
wait "$JOB_PID" && fail "order mode ran nodes on hosts that do not resolve"
grep -q "cannot resolve host nowhere-1.invalid to an IPv4 address" "$WORK/job.log" ||
  fail "order mode with unresolvable hosts: $(cat "$WORK/job.log")"
run_job "node1 node2 node3" hostname
wait "$JOB_PID" && fail "hostname mode ran nodes on hosts outside the allocation"
grep -q 'node experts-a has host "127.0.0.1", which is not in this job' "$WORK/job.log" ||
  fail "hostname mode with other hosts: $(cat "$WORK/job.log")"
echo "ok: refusals"

# --- order mode on three hosts, then scancel ---
: > "$WORK/srun.log"
: > "$WORK/srun.log.pids"
run_job "localhost localhost localhost" order
wait_ready
[[ -f "$copy" ]] || fail "no graph copy at $copy"
[[ $(grep -c '^host = "127.0.0.1"   # set by moeflow.sbatch for job 4242$' "$copy") == 3 ]] ||
  fail "the copy's hosts were not all rewritten: $(grep -n host "$copy")"
[[ -s "$WORK/targets/slurm-4242.json" ]] || fail "no targets file"
grep -q '"node": "router"' "$WORK/targets/slurm-4242.json" || fail "targets lack the router"
mapfile -t steps < "$WORK/srun.log"
[[ ${#steps[@]} == 3 ]] || fail "expected 3 srun steps, got: ${steps[*]}"
# The steps run in the background, so the fake srun logs them in any order; the script's own log
# says the order it started them in (expert nodes first, the router last).
router_step=$(printf '%s\n' "${steps[@]}" | grep -- "--node router$" || true)
[[ "$router_step" == *"--nodelist=localhost"*"--cpus-per-task=2"*"serve --graph $copy --node router" ]] ||
  fail "no router step as expected among: ${steps[*]}"
started=$(grep -o 'node [a-z-]* on localhost' "$WORK/job.log" | tail -1)
[[ "$started" == "node router on localhost" ]] || fail "the router was not started last: $started"
stop_job
echo "ok: order mode: three nodes, one srun each, router last; SIGTERM stopped them and cleaned up"

# --- hostname mode: one host whose address (127.0.0.1) every node names ---
: > "$WORK/srun.log"
: > "$WORK/srun.log.pids"
run_job "localhost" hostname
wait_ready
[[ ! -e "$copy" ]] || fail "hostname mode wrote a copy of the graph"
grep -q -- "--nodelist=localhost .*serve --graph $WORK/graph/cluster.toml --node router$" "$WORK/srun.log" ||
  fail "hostname mode did not run the graph itself: $(cat "$WORK/srun.log")"
stop_job
echo "ok: hostname mode: the graph as it is, every node on its host"
status=0
