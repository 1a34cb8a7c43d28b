#!/usr/bin/env bash
# On a machine with a GPU: runs the GPU tests, then again under compute-sanitizer (memcheck,
# racecheck, synccheck) where it works, then the GPU benchmarks. Logs go to $OUT (or
# build/gpu_check). Exit status: non-zero when a test or a sanitizer check fails.
#
# The binaries come from build/gpu_bundle.tar.gz when it exists (scripts/gpu_bundle.sh, made on
# a build machine: the GPU machines of this project cannot install ZeroMQ or CAF); otherwise
# this builds here.
#
# A lent GPU machine gives this project minutes, all tries together, so everything runs inside
# one budget (GPU_CHECK_BUDGET_S, default 540 s: a 600 s command with room to spare), the
# figures before the slow sanitizers; each step is cut to what is left and logs why.
set -uo pipefail
START=$SECONDS
BUDGET="${GPU_CHECK_BUDGET_S:-540}"
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

# The seconds step `$1` may take: at most `$2`, and what the budget has left (less 5 s).
budget_for() {
  local left=$((BUDGET - (SECONDS - START) - 5))
  local want=$2
  ((left < want)) && want=$left
  if ((want < 10)); then
    echo "gpu_check: $1 skipped: the ${BUDGET} s budget is spent" | tee -a "$LOGS/skipped.txt" >&2
    echo 0
    return 1
  fi
  echo "$want"
}

# Everything that touches a GPU, and the device checks that run everywhere. A test that kills
# the process (a crash in a kernel) would hide the ones after it: it is named, left out, and the
# rest run again (up to three times).
FILTER='Cuda*:Gpu*:ExpertShard.*:DeviceCheck*:NodeDevices*:Nccl*:WireGpuGroup*'
excluded=""
for attempt in 1 2 3; do
  limit=$(budget_for "GPU tests (attempt $attempt)" 200) || break
  run moeflow_tests --gtest_filter="$FILTER${excluded:+-$excluded}" > "$LOGS/tests_$attempt.log" 2>&1
  rc=$?
  cp "$LOGS/tests_$attempt.log" "$LOGS/tests.log"
  ((rc == 0)) && break
  status=1
  ((rc < 128 || rc == 124)) && break  # failures reported by gtest, or out of time: nothing to skip
  crashed="$(grep -E '^\[ RUN      \]' "$LOGS/tests_$attempt.log" | tail -1 | awk '{print $NF}')"
  [[ -z "$crashed" ]] && break
  echo "gpu_check: $crashed ended the test process (status $rc); running the rest without it" |
    tee -a "$LOGS/crashed.txt"
  excluded="${excluded:+$excluded:}$crashed"
done
tail -25 "$LOGS/tests.log"
grep -q "SKIPPED" "$LOGS/tests.log" && echo "gpu_check: some tests skipped (see tests.log)"

# The figures: the expert stage against the bf16 peak, decode of the larger random checkpoint
# with the whole model on the GPU against the device's copy bandwidth (issue 8's bars), NCCL.
if limit=$(budget_for "bench cuda-experts" 120); then
  run moeflow bench cuda-experts > "$LOGS/bench_cuda-experts.txt" 2>&1 || status=1
  tail -30 "$LOGS/bench_cuda-experts.txt"
fi
# The checkpoint is made here (numpy only), not carried.
ckpt="$(mktemp -d)/mixtral-bench"
if limit=$(budget_for "bench decode (making the checkpoint)" 120) &&
  timeout "$limit" python3 "$ROOT/bench/make_bench_checkpoint.py" --out "$ckpt" \
    > "$LOGS/make_checkpoint.log" 2>&1; then
  for batch in 1 8; do
    limit=$(budget_for "bench decode --batch $batch" 90) || break
    run moeflow bench decode --model "$ckpt" --device cuda:0 --batch "$batch" \
      > "$LOGS/bench_decode_gpu_b$batch.txt" 2>&1 || status=1
    tail -8 "$LOGS/bench_decode_gpu_b$batch.txt"
  done
else
  echo "gpu_check: no bench checkpoint (see make_checkpoint.log), decode not measured"
fi
rm -rf "$(dirname "$ckpt")"
# Two Mixtral-sized layers (~6 GB, tiled random values: made in seconds): where decode is bound
# by reading the weights rather than by launching kernels, as for real models.
big="$(mktemp -d)/mixtral-2l"
if limit=$(budget_for "bench decode, Mixtral-sized layers (making the checkpoint)" 90) &&
  timeout "$limit" python3 "$ROOT/bench/make_bench_checkpoint.py" --out "$big" --layers 2 \
    --hidden 4096 --heads 32 --kv-heads 8 --experts 8 --intermediate 14336 --fill tile \
    > "$LOGS/make_checkpoint_mixtral_2l.log" 2>&1 &&
  limit=$(budget_for "bench decode, Mixtral-sized layers" 90); then
  run moeflow bench decode --model "$big" --device cuda:0 > "$LOGS/bench_decode_gpu_mixtral_2l.txt" \
    2>&1 || status=1
  tail -8 "$LOGS/bench_decode_gpu_mixtral_2l.txt"
else
  echo "gpu_check: Mixtral-sized decode not measured (see make_checkpoint_mixtral_2l.log)"
fi
rm -rf "$(dirname "$big")"
if limit=$(budget_for "bench nccl" 60); then
  run moeflow bench nccl > "$LOGS/bench_nccl.txt" 2>&1 || status=1
  tail -14 "$LOGS/bench_nccl.txt"
fi

# compute-sanitizer on our kernels only: it slows every launch down a lot, and NCCL's kernels
# are not ours to check.
SANITIZER="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
if [[ -n "$SANITIZER" ]]; then
  for tool in memcheck racecheck synccheck; do
    limit=$(budget_for "compute-sanitizer $tool" 120) || continue
    # memcheck also walks the device-resident Engine step (staged uploads, the attention table,
    # buffers shared across two streams); racecheck and synccheck look inside kernels only.
    sanitized='Cuda*:GpuExpertStage*'
    [[ "$tool" == memcheck ]] && sanitized="$sanitized:GpuEngineStep*"
    if [[ -n "${B:-}" ]]; then
      LD_LIBRARY_PATH="${system_first:-$B/lib:$cuda_libs}" timeout "$limit" "$SANITIZER" \
        --tool "$tool" --error-exitcode 3 "$B/moeflow_tests" --gtest_filter="$sanitized" \
        > "$LOGS/sanitizer_$tool.log" 2>&1
    else
      timeout "$limit" "$SANITIZER" --tool "$tool" --error-exitcode 3 "$BUILD/moeflow_tests" \
        --gtest_filter="$sanitized" > "$LOGS/sanitizer_$tool.log" 2>&1
    fi || { echo "gpu_check: $tool reported errors, could not run or ran out of time"; status=1; }
    tail -3 "$LOGS/sanitizer_$tool.log"
  done
else
  echo "gpu_check: compute-sanitizer not installed, skipped"
fi
echo "gpu_check: done in $((SECONDS - START)) s of the ${BUDGET} s budget"
exit $status
