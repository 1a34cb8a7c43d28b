#!/usr/bin/env bash
# Builds moeflow and runs it. With no arguments it runs the one-process deployment graph
# configs/local.toml (scheduler, router and expert shard actors over the bundled Mixtral test
# checkpoint) and generates from a prompt; the embedded demo model and the HTTP service arrive
# with later milestones. With arguments it runs `moeflow <arguments>`, e.g.
# scripts/run.sh inspect --model tests/golden/deepseek.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh" >&2
if (($# == 0)); then
  set -- generate --graph "$ROOT/configs/local.toml" --prompt-ids 1,2,3,4 --max-tokens 16
fi
exec "$BUILD/moeflow" "$@"
