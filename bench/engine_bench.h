#pragma once
// Decode and prefill throughput of the Engine, printed as a table beside this machine's measured
// limits (DRAM read bandwidth for decode, fp32 FMA peak for prefill).
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct DecodeBenchOptions {
  std::string model;
  std::string dtype = "auto";
  int cuda_device = -1;  // >= 0: the whole model on that GPU, against its measured bandwidth
  int64_t batch = 1;
  int64_t tokens = 32;  // decode steps measured per round
  int64_t rounds = 3;   // rounds of (bandwidth measurement, timed steps)
  int64_t prompt = 16;  // prompt tokens per sequence before decoding
  uint64_t seed = 0;
};

struct PrefillBenchOptions {
  std::string model;
  std::string dtype = "auto";
  int64_t tokens = 512;  // prompt length
  int64_t repeats = 3;
};

int run_decode_bench(const DecodeBenchOptions& opts);
int run_prefill_bench(const PrefillBenchOptions& opts);
int run_machine_bench();

}  // namespace moeflow::bench
