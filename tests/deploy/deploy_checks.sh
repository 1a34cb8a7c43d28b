#!/usr/bin/env bash
# The deploy_promtool test: static checks of deploy/ and dashboards/.
#   - promtool check config on deploy/prometheus/prometheus.yml, with the file_sd targets that
#     `moeflow graph targets configs/three-node.toml` writes (so promtool checks them too);
#   - promtool check rules and promtool test rules on the alert files;
#   - check_dashboards.py: dashboards are valid JSON on the moeflow-prometheus datasource, using
#     only metrics of docs/metrics.md; alerts are `<signal> <comparison> <threshold>`;
#   - bash -n on the Slurm script; systemd-analyze verify on the unit (when systemd is there).
#
# Usage: deploy_checks.sh MOEFLOW_BINARY SOURCE_DIR
# Exit 77 (CTest: skipped) when promtool is missing (Debian package prometheus; scripts/setup.sh).
set -euo pipefail
BIN="$1"
SRC="$2"
command -v promtool >/dev/null || { echo "SKIPPED: promtool is not installed (apt-get install prometheus)"; exit 77; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failures=0
check() {
  local what="$1"; shift
  if "$@" > "$WORK/out" 2>&1; then
    echo "ok: $what"
  else
    echo "FAILED: $what"; sed 's/^/  /' "$WORK/out"
    failures=$((failures + 1))
  fi
}

cp -r "$SRC/deploy/prometheus" "$WORK/prometheus"
"$BIN" graph targets "$SRC/configs/three-node.toml" > "$WORK/prometheus/targets/three-node.json"
check "promtool check config prometheus.yml (targets of configs/three-node.toml)" \
  promtool check config "$WORK/prometheus/prometheus.yml"
if grep -q "WARNING" "$WORK/out"; then
  echo "FAILED: promtool warns about prometheus.yml"; sed 's/^/  /' "$WORK/out"; failures=$((failures + 1))
fi
check "promtool check rules alerts.yml" promtool check rules "$SRC/deploy/prometheus/alerts.yml"
check "promtool test rules alerts_test.yml" promtool test rules "$SRC/deploy/prometheus/alerts_test.yml"
check "dashboards and alerts against docs/metrics.md" python3 "$SRC/tests/deploy/check_dashboards.py" "$SRC"
cat "$WORK/out"
check "bash -n deploy/slurm/moeflow.sbatch" bash -n "$SRC/deploy/slurm/moeflow.sbatch"
# systemd-analyze needs a working systemd install; probe it on a trivial unit first.
printf '[Service]\nExecStart=/bin/true\n' > "$WORK/probe.service"
if command -v systemd-analyze >/dev/null && systemd-analyze verify "$WORK/probe.service" >/dev/null 2>&1; then
  cp "$SRC/deploy/systemd/moeflow@.service" "$WORK/moeflow@check.service"
  check "systemd-analyze verify moeflow@.service" systemd-analyze verify "$WORK/moeflow@check.service"
  if [[ -s "$WORK/out" ]]; then
    echo "FAILED: systemd-analyze warns about moeflow@.service"; sed 's/^/  /' "$WORK/out"; failures=$((failures + 1))
  fi
else
  echo "not checked: moeflow@.service (systemd-analyze is missing or does not work here)"
fi

if ((failures)); then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
