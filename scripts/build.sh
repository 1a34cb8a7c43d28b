#!/usr/bin/env bash
# Configures and builds moeflow into build/ (or $MOEFLOW_BUILD_DIR). Incremental on re-runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)"
