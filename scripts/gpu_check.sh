#!/usr/bin/env bash
# On a machine with a GPU: builds moeflow, runs the GPU kernel tests, and runs them again under
# compute-sanitizer (memcheck, racecheck, synccheck) where it is installed, then the expert-stage
# and NCCL benchmarks (the NCCL tests run without the sanitizer: NCCL's own kernels are not ours). Logs go to $OUT (or build/gpu_check). Exit status: non-zero when a test or a
# sanitizer check fails.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEFLOW_BUILD_DIR:-$ROOT/build}"
LOGS="${OUT:-$BUILD/gpu_check}"
mkdir -p "$LOGS"
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 || true
"$ROOT/scripts/build.sh" moeflow moeflow_tests > "$LOGS/build.log" 2>&1 || { tail -50 "$LOGS/build.log"; exit 1; }
TESTS="$BUILD/moeflow_tests"
FILTER='Cuda*:GpuExpertStage*:DeviceCheck*:NodeDevices*:Nccl*:WireGpuGroup*:GpuGroupPlan*'
status=0
"$TESTS" --gtest_filter="$FILTER" 2>&1 | tee "$LOGS/tests.log" | tail -30 || status=1
grep -q "SKIPPED" "$LOGS/tests.log" && echo "gpu_check: some tests skipped (no device?)"
SANITIZER="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
if [[ -n "$SANITIZER" ]]; then
  for tool in memcheck racecheck synccheck; do
    "$SANITIZER" --tool "$tool" --error-exitcode 3 "$TESTS" --gtest_filter='Cuda*:GpuExpertStage*' \
      > "$LOGS/sanitizer_$tool.log" 2>&1 || { echo "gpu_check: $tool reported errors"; status=1; }
    tail -3 "$LOGS/sanitizer_$tool.log"
  done
else
  echo "gpu_check: compute-sanitizer not installed, skipped"
fi
"$BUILD/moeflow" bench cuda-experts 2>&1 | tee "$LOGS/bench_cuda_experts.txt" | tail -12 || status=1
# Exit 2 only when no device or no NCCL library: the test log says which.
timeout 120 "$BUILD/moeflow" bench nccl 2>&1 | tee "$LOGS/bench_nccl.txt" | tail -14 || status=1
exit $status
