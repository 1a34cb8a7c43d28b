#!/usr/bin/env bash
# On a machine with a GPU: runs the GPU tests, then again under compute-sanitizer (memcheck,
# racecheck, synccheck) where it works, then the GPU benchmarks. Logs go to $OUT (or
# build/gpu_check). Exit status: non-zero when a test or a sanitizer check fails.
#
# The binaries come from build/gpu_bundle.tar.gz when it exists (scripts/gpu_bundle.sh, made on
# a build machine: the GPU machines of this project cannot install ZeroMQ or CAF); otherwise
# this builds here.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
LOGS="${OUT:-$BUILD/gpu_check}"
mkdir -p "$LOGS"
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 || true
status=0
limit=0  # seconds for each run (0: none); the benchmarks get a limit below

if [[ -f "$BUILD/gpu_bundle.tar.gz" ]]; then
  B="$(mktemp -d)/gpu_bundle"
  tar -C "$(dirname "$B")" -xzf "$BUILD/gpu_bundle.tar.gz"
  # The tests find tests/golden under the source path they were compiled in.
  src="$(cat "$B/source_dir")"
  if [[ "$src" != "$ROOT" && ! -e "$src" ]]; then
    mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src"
  fi
  cuda_libs="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  # First choice: this machine's own C and C++ runtimes (newer ones run older binaries), the
  # packed libraries for the rest. Fallback: the packed loader and runtimes.
  system_first="/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:$B/lib:$cuda_libs"
  if LD_LIBRARY_PATH="$system_first" "$B/moeflow_tests" --gtest_list_tests > /dev/null 2>&1; then
    echo "gpu_check: bundle with this machine's C/C++ runtimes" | tee "$LOGS/mode.txt"
    run() { LD_LIBRARY_PATH="$system_first" timeout "$limit" "$B/$1" "${@:2}"; }
  else
    echo "gpu_check: bundle with its own loader and runtimes" | tee "$LOGS/mode.txt"
    run() {
      timeout "$limit" "$B/lib/ld-linux-x86-64.so.2" --library-path "$B/lib:$cuda_libs" "$B/$1" "${@:2}"
    }
  fi
else
  "$ROOT/scripts/build.sh" moeflow moeflow_tests > "$LOGS/build.log" 2>&1 ||
    { tail -50 "$LOGS/build.log"; exit 1; }
  run() { timeout "$limit" "$BUILD/$1" "${@:2}"; }
fi

# Everything that touches a GPU, and the device checks that run everywhere.
FILTER='Cuda*:Gpu*:ExpertShard.*:DeviceCheck*:NodeDevices*:Nccl*:WireGpuGroup*'
run moeflow_tests --gtest_filter="$FILTER" > "$LOGS/tests.log" 2>&1 || status=1
tail -25 "$LOGS/tests.log"
grep -q "SKIPPED" "$LOGS/tests.log" && echo "gpu_check: some tests skipped (see tests.log)"

SANITIZER="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
if [[ -n "$SANITIZER" ]]; then
  for tool in memcheck racecheck synccheck; do
    # Our kernels only: the sanitizer slows every launch down a lot, and NCCL's kernels are not
    # ours to check.
    run_sanitized() { "$SANITIZER" --tool "$tool" --error-exitcode 3 "$@"; }
    # memcheck also walks the device-resident Engine step (staged uploads, the attention table,
    # buffers shared across two streams); racecheck and synccheck look inside kernels only.
    sanitized='Cuda*:GpuExpertStage*'
    [[ "$tool" == memcheck ]] && sanitized="$sanitized:GpuEngineStep*"
    if [[ -n "${B:-}" ]]; then
      LD_LIBRARY_PATH="${system_first:-$B/lib:$cuda_libs}" run_sanitized "$B/moeflow_tests" \
        --gtest_filter="$sanitized" > "$LOGS/sanitizer_$tool.log" 2>&1
    else
      run_sanitized "$BUILD/moeflow_tests" --gtest_filter="$sanitized" \
        > "$LOGS/sanitizer_$tool.log" 2>&1
    fi || { echo "gpu_check: $tool reported errors (or could not run)"; status=1; }
    tail -3 "$LOGS/sanitizer_$tool.log"
  done
else
  echo "gpu_check: compute-sanitizer not installed, skipped"
fi

for bench in cuda-experts nccl; do
  if run moeflow bench --help 2>&1 | grep -q "$bench"; then
    # Exit 2 only when there is no device or no library: the log says which.
    limit=180 run moeflow bench "$bench" > "$LOGS/bench_$bench.txt" 2>&1 || status=1
    tail -14 "$LOGS/bench_$bench.txt"
  fi
done
# Decode of the larger random checkpoint with the whole model on the GPU, against the device's
# copy bandwidth (issue 8's decode bar). The checkpoint is made here (numpy only), not carried.
ckpt="$(mktemp -d)/mixtral-bench"
if python3 "$ROOT/bench/make_bench_checkpoint.py" --out "$ckpt" > "$LOGS/make_checkpoint.log" 2>&1; then
  limit=300 run moeflow bench decode --model "$ckpt" --device cuda:0 > "$LOGS/bench_decode_gpu.txt" \
    2>&1 || status=1
  tail -8 "$LOGS/bench_decode_gpu.txt"
else
  echo "gpu_check: could not make the bench checkpoint (see make_checkpoint.log)"
fi
exit $status
