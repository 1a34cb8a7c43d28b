// The engine against Hugging Face transformers: logits at every prefill position and every
// decode step, for a batch of sequences of different lengths, and identical greedy tokens.
// Fixtures: tests/golden/make_golden.py.
#include <gtest/gtest.h>

#include "model/engine.h"
#include "model/generator.h"
#include "model/sampler.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

using test_support::GoldenFixture;
using test_support::load_golden;
using test_support::max_abs_diff;

class EngineGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = load_golden(GetParam());
    engine_ = Engine::load(golden_.dir, {"auto", false});
    tolerance_ = 1e-4 * golden_.logits_scale;
  }

  // Expects `got` ([rows, vocab]) to match the reference rows within the tolerance.
  void expect_logits(const float* got, const float* want, int64_t rows, const std::string& what) {
    for (int64_t r = 0; r < rows; ++r) {
      const double err =
          max_abs_diff(got + r * golden_.vocab, want + r * golden_.vocab, golden_.vocab);
      EXPECT_LE(err, tolerance_) << what << " row " << r;
    }
  }

  GoldenFixture golden_;
  std::unique_ptr<Engine> engine_;
  double tolerance_ = 0;
};

// All prompts prefilled in one batch, then decoded together step by step.
TEST_P(EngineGolden, BatchedPrefillAndDecodeMatchReference) {
  const int64_t n = static_cast<int64_t>(golden_.prompts.size()), V = golden_.vocab;
  std::vector<SequenceTokens> batch;
  for (int64_t s = 0; s < n; ++s) batch.push_back({static_cast<uint64_t>(s), golden_.prompts[s]});
  std::vector<float> logits = engine_->forward(batch, /*all_positions=*/true);
  int64_t offset = 0;
  for (int64_t s = 0; s < n; ++s) {
    const int64_t len = static_cast<int64_t>(golden_.prompts[s].size());
    expect_logits(logits.data() + offset * V, golden_.prefill[s].data(), len,
                  "prefill of sequence " + std::to_string(s));
    EXPECT_EQ(argmax(logits.data() + (offset + len - 1) * V, V), golden_.greedy[s][0]);
    offset += len;
  }
  for (int64_t t = 0; t < golden_.decode_steps; ++t) {
    for (int64_t s = 0; s < n; ++s) batch[s].tokens = {golden_.greedy[s][t]};
    logits = engine_->forward(batch);
    for (int64_t s = 0; s < n; ++s) {
      expect_logits(logits.data() + s * V, golden_.decode[s].data() + t * V, 1,
                    "decode step " + std::to_string(t) + " of sequence " + std::to_string(s));
      EXPECT_EQ(argmax(logits.data() + s * V, V), golden_.greedy[s][t + 1])
          << "step " << t << " sequence " << s;
    }
  }
}

// Continuous-batching shape: a sequence's prefill shares a step with another's decode.
TEST_P(EngineGolden, PrefillMixedWithDecodeMatchesReference) {
  const int64_t V = golden_.vocab;
  std::vector<float> logits = engine_->forward({{0, golden_.prompts[0]}});
  expect_logits(logits.data(), golden_.prefill[0].data() + (golden_.prompts[0].size() - 1) * V, 1,
                "prefill 0");
  // Sequence 0 decodes its first greedy token while sequence 1 prefills.
  logits = engine_->forward({{0, {golden_.greedy[0][0]}}, {1, golden_.prompts[1]}});
  expect_logits(logits.data(), golden_.decode[0].data(), 1, "decode 0 step 0");
  expect_logits(logits.data() + V, golden_.prefill[1].data() + (golden_.prompts[1].size() - 1) * V,
                1, "prefill 1");
  // A released sequence frees its slot; a new one with the same id starts from scratch.
  engine_->release(0);
  EXPECT_EQ(engine_->sequence_length(0), 0);
  logits = engine_->forward({{0, golden_.prompts[2]}, {1, {golden_.greedy[1][0]}}});
  expect_logits(logits.data(), golden_.prefill[2].data() + (golden_.prompts[2].size() - 1) * V, 1,
                "prefill 2 reusing id 0");
  expect_logits(logits.data() + V, golden_.decode[1].data(), 1, "decode 1 step 0");
}

TEST_P(EngineGolden, GreedyGenerationReproducesReferenceTokens) {
  std::vector<GenerationRequest> requests;
  for (const auto& p : golden_.prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.max_tokens = golden_.decode_steps + 1;
    requests.push_back(r);
  }
  const auto results = generate(*engine_, requests);
  for (size_t s = 0; s < results.size(); ++s) {
    EXPECT_EQ(results[s].tokens, golden_.greedy[s]) << "sequence " << s;
    EXPECT_EQ(results[s].finish_reason, "length");
  }
}

INSTANTIATE_TEST_SUITE_P(Families, EngineGolden,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek"),
                         [](const auto& info) { return info.param; });

// bf16 weights with fp32 accumulation on an fp32 checkpoint: close to the reference, not equal.
TEST(EngineBf16, Bf16ComputeStaysCloseToFp32Reference) {
  const GoldenFixture g = load_golden("mixtral");
  auto engine = Engine::load(g.dir, {"bf16", false});
  EXPECT_EQ(engine->compute_type(), ComputeType::bf16);
  const auto logits = engine->forward({{0, g.prompts[1]}}, true);
  const double err = max_abs_diff(logits.data(), g.prefill[1].data(), logits.size());
  EXPECT_LE(err, 0.05 * g.logits_scale);
  EXPECT_GT(err, 0.0) << "bf16 rounding should change something";
}

}  // namespace
}  // namespace moeflow
