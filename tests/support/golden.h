#pragma once
// Loads a reference fixture written by tests/golden/make_golden.py (Hugging Face transformers):
// the prompts, the greedy continuation, and the reference logits at every prefill position and
// every decode step. A missing fixture fails the test that asks for it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moeflow::test_support {

struct GoldenFixture {
  std::filesystem::path dir;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> greedy;  // decode_steps + 1 tokens per prompt
  int64_t decode_steps = 0;
  double logits_scale = 0;
  int64_t vocab = 0;
  std::vector<std::vector<float>> prefill;  // per prompt: [len, vocab]
  std::vector<std::vector<float>> decode;   // per prompt: [decode_steps, vocab]
};

std::filesystem::path golden_dir(const std::string& name);
GoldenFixture load_golden(const std::string& name);  // throws std::runtime_error when missing

// Largest |a - b| over n elements.
double max_abs_diff(const float* a, const float* b, int64_t n);

}  // namespace moeflow::test_support
