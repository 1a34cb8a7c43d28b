#!/usr/bin/env bash
# Builds moeflow and runs it. With no arguments it starts the service: the one-process
# deployment graph configs/local.toml (HTTP gateway, scheduler, router and expert shard actors)
# on the embedded demo model, serving the OpenAI-compatible API on http://127.0.0.1:8000 as
# model "demo" until Ctrl-C. With arguments it runs `moeflow <arguments>`, e.g.
# scripts/run.sh inspect --model models/demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh" moeflow >&2
if (($# == 0)); then
  set -- serve --graph "$ROOT/configs/local.toml" --model-name demo
fi
exec "$BUILD/moeflow" "$@"
