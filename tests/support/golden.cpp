#include "tests/support/golden.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/safetensors.h"

namespace moeflow::test_support {

std::filesystem::path golden_dir(const std::string& name) {
  return std::filesystem::path(MOEFLOW_SOURCE_DIR) / "tests" / "golden" / name;
}

namespace {

std::vector<float> read_f32(const SafetensorsFile& file, const std::string& name,
                            int64_t expected_numel) {
  const TensorInfo* t = file.find(name);
  if (!t || t->dtype != DType::f32 || t->numel() != expected_numel)
    throw std::runtime_error(file.path().string() + ": reference tensor " + name +
                             " missing or mis-shaped");
  std::vector<float> out(expected_numel);
  std::memcpy(out.data(), t->data, expected_numel * sizeof(float));
  return out;
}

}  // namespace

GoldenFixture load_golden(const std::string& name) {
  GoldenFixture g;
  g.dir = golden_dir(name);
  std::ifstream in(g.dir / "reference.json");
  if (!in)
    throw std::runtime_error("missing fixture " + (g.dir / "reference.json").string() +
                             " (regenerate with tests/golden/make_golden.py)");
  const auto j = nlohmann::json::parse(in);
  g.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
  g.greedy = j.at("greedy").get<std::vector<std::vector<int32_t>>>();
  g.decode_steps = j.at("decode_steps").get<int64_t>();
  g.logits_scale = j.at("logits_scale").get<double>();
  const auto cfg = nlohmann::json::parse(std::ifstream(g.dir / "config.json"));
  g.vocab = cfg.at("vocab_size").get<int64_t>();
  const auto ref = SafetensorsFile::open(g.dir / "reference.safetensors");
  for (size_t s = 0; s < g.prompts.size(); ++s) {
    const int64_t len = static_cast<int64_t>(g.prompts[s].size());
    g.prefill.push_back(read_f32(ref, "prefill." + std::to_string(s), len * g.vocab));
    g.decode.push_back(read_f32(ref, "decode." + std::to_string(s), g.decode_steps * g.vocab));
  }
  return g;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace moeflow::test_support
