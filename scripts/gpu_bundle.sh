#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that cannot build moeflow (no package
# registry there, so no ZeroMQ, CAF, toml++ ...): the moeflow and moeflow_tests binaries built
# here, every shared library they load except the GPU driver, and this system's dynamic loader,
# in build/gpu_bundle.tar.gz (about 30 MB; the device tool carries at most 64 MiB).
# gpu_check.sh runs the binaries through the packed loader with the packed libraries first, so
# they do not depend on the GPU machine's distribution; the driver (libcuda) and cuBLAS/NCCL,
# loaded at run time, come from that machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/build.sh" moeflow moeflow_tests
STAGE="$BUILD/gpu_bundle"
rm -rf "$STAGE" "$BUILD/gpu_bundle.tar.gz"
mkdir -p "$STAGE/lib"
cp "$BUILD/moeflow" "$BUILD/moeflow_tests" "$STAGE/"
for bin in "$BUILD/moeflow" "$BUILD/moeflow_tests"; do
  # "name => /path (addr)" lines, and the loader's own "/lib64/ld-linux... (addr)" line.
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done | sort -u | while read -r lib; do
  cp -L "$lib" "$STAGE/lib/"
done
# The source tree the tests were compiled against (they find tests/golden there).
grep -m1 '^CMAKE_HOME_DIRECTORY' "$BUILD/CMakeCache.txt" | cut -d= -f2 > "$STAGE/source_dir"
tar -C "$BUILD" -czf "$BUILD/gpu_bundle.tar.gz" gpu_bundle
echo "gpu_bundle: $(du -h "$BUILD/gpu_bundle.tar.gz" | cut -f1) in $BUILD/gpu_bundle.tar.gz" \
  "($(ls "$STAGE/lib" | wc -l) libraries; built from $(cat "$STAGE/source_dir"))"
