#pragma once
// Self-speculative decoding against plain decoding on one Engine: tokens/s at each batch size,
// the acceptance rate of each draft setting, and the expert (and all weight) bytes read per
// produced token beside the DRAM bandwidth limit for those bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace moeflow::bench {

struct SpeculativeBenchOptions {
  std::string model;
  std::string dtype = "auto";
  std::vector<int64_t> batches = {1, 4, 16};
  std::vector<int64_t> gammas = {1, 2, 4, 0};  // 0: the adaptive controller
  int64_t draft_top_k = 1;
  // > 0: the drafter may only use this many experts per layer, those its own routing used most
  // in a short observation run (reported).
  int64_t resident = 0;
  int64_t tokens = 64;  // generated per sequence (the first, with the prefill, untimed)
  int64_t prompt = 16;  // random prompt tokens per sequence
  int64_t rounds = 3;   // each times every setting once, in rotated order; medians are reported
  uint64_t seed = 0;
};

// "1,2,4,adaptive" -> {1, 2, 4, 0}; throws moeflow::Error naming the bad element.
std::vector<int64_t> parse_gamma_list(const std::string& text);

int run_speculative_bench(const SpeculativeBenchOptions& opts);

}  // namespace moeflow::bench
