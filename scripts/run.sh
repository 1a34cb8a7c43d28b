#!/usr/bin/env bash
# Builds moeflow and runs it. With no arguments it generates from the bundled Mixtral test
# checkpoint (the embedded demo model and the HTTP service arrive with later milestones);
# with arguments it runs `moeflow <arguments>`, e.g. scripts/run.sh inspect --model DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh" >&2
if (($# == 0)); then
  set -- generate --model "$ROOT/tests/golden/mixtral" --prompt-ids 1,2,3,4 --max-tokens 16
fi
exec "$BUILD/moeflow" "$@"
