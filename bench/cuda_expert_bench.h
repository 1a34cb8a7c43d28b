#pragma once
// The GPU expert stage (kernels/cuda/expert_stage.h) alone, against this GPU's measured ceilings:
// first the bf16 cuBLAS GEMM peak (8192^3) and the device-to-device copy bandwidth, then the stage
// per row count (random bf16 experts made on the device, uniform random top-k routing) with
// TFLOP/s, % of peak, GB/s touched, % of copy bandwidth and which of the two bounds applies;
// then, at decode sizes, the small-batch path (kernels/cuda/expert_small_batch.h) next to the
// cuBLAS path on the same routing, with the GB/s of expert weights read against the copy
// bandwidth (decode is memory-bound).
// Without a CUDA device (or built without CUDA) it says so and returns 0.
#include <cstdint>
#include <vector>

namespace moeflow::bench {

struct CudaExpertBenchOptions {
  std::vector<int64_t> rows = {1, 8, 64, 512, 4096, 8192};
  // Decode sizes for the small-batch table (rows whose rows x top-k exceeds the small-batch
  // limit, 64 pairs, show the cuBLAS path only).
  std::vector<int64_t> small_rows = {1, 2, 4, 8, 16};
  int64_t experts = 8;  // all held by the one GPU
  int64_t top_k = 2;
  int64_t hidden = 4096;
  int64_t inter = 14336;
  int64_t repeats = 20;  // timed calls per row count (median reported), after 3 warm-ups
  int device = 0;
  uint64_t seed = 1;
};

int run_cuda_expert_bench(const CudaExpertBenchOptions& opts);

}  // namespace moeflow::bench
