#pragma once
// Picks the next token from logits: greedy when temperature is 0, else temperature-scaled
// softmax restricted by top-k and top-p (nucleus), drawn from a seeded generator so that a seed
// reproduces the same tokens.
#include <cstdint>
#include <random>
#include <vector>

namespace moeflow {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int64_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

// Throws moeflow::Error for out-of-range values (negative temperature, top_p outside (0, 1], ...).
void validate(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(const float* logits, int64_t vocab);

  // The distribution sample() draws from (after temperature, top-k, top-p), for tests and for
  // speculative decoding. Greedy gives a one-hot vector.
  std::vector<float> distribution(const float* logits, int64_t vocab) const;

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float* logits, int64_t vocab);

}  // namespace moeflow
