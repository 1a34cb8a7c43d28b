#!/usr/bin/env bash
# Builds moeflow and runs the whole test suite. Extra arguments go to ctest (e.g. -R Engine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh"
cd "$BUILD"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" ctest --output-on-failure --timeout 600 "$@"
