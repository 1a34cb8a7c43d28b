#pragma once
// The GPU expert stage (kernels/cuda/expert_stage.h) alone: TFLOP/s and weight bytes/s against
// the number of rows, random bf16 weights made on the device, uniform random top-k routing.
// Without a CUDA device (or built without CUDA) it says so and returns 0.
#include <cstdint>
#include <vector>

namespace moeflow::bench {

struct CudaExpertBenchOptions {
  std::vector<int64_t> rows = {1, 16, 128, 512, 1024, 4096, 8192};
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
