// Speculative sampling end to end on small golden checkpoints (vocabulary 320): the joint
// distribution of the first two tokens a SpeculativeDecoder emits after a prompt matches the full
// model's exactly computed one (Pearson chi-square at significance 0.001, fixed seeds), and with
// the same sample size the test rejects a deliberately wrong acceptance rule run through the same
// decoder. Top-k 6 keeps the support small enough for expected counts of at least 5 per cell.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "model/engine.h"
#include "model/sampler.h"
#include "model/speculative.h"
#include "tests/model/chi_square.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

using test_support::chi_square;
using test_support::ChiSquare;

constexpr double kAlpha = 0.001;
constexpr int64_t kTrials = 6000;  // see SampleSizeDetectsWrongRules
constexpr int64_t kBatch = 60;     // trials decoded together, each its own sequence and seed
constexpr int64_t kGamma = 3;

double always_accept(double, double) {
  return 1.0;
}
double inverted_ratio(double p, double q) {
  return p > 0.0 ? std::min(1.0, q / p) : 1.0;
}

SamplingParams sampling(uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 6;
  p.seed = seed;
  return p;
}

class SpeculativeSampling : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    engine_ = Engine::load(test_support::golden_dir(GetParam()), {"auto", false});
    vocab_ = engine_->config().vocab_size;
    prompt_ = test_support::load_golden(GetParam()).prompts[0];
  }

  // The sampling distribution of the full model (or of the drafter) after `tokens`.
  std::vector<float> distribution(const std::vector<int32_t>& tokens, const ExpertBudget& budget) {
    const uint64_t id = 900000;
    const std::vector<float> logits = engine_->forward({{id, tokens}}, false, nullptr, budget);
    engine_->release(id);
    return Sampler(sampling(0)).distribution(logits.data(), vocab_);
  }

  // Exact probabilities of the first two tokens (x, y), cell x * vocab + y.
  std::vector<double> first_two_probs() {
    std::vector<double> probs(vocab_ * vocab_, 0.0);
    const std::vector<float> p0 = distribution(prompt_, {});
    for (int32_t x = 0; x < vocab_; ++x) {
      if (p0[x] <= 0.0f) continue;
      std::vector<int32_t> t = prompt_;
      t.push_back(x);
      const std::vector<float> p1 = distribution(t, {});
      for (int32_t y = 0; y < vocab_; ++y) probs[x * vocab_ + y] = double(p0[x]) * p1[y];
    }
    return probs;
  }

  // Runs kTrials generations of at least two tokens through one decoder, kBatch at a time.
  std::vector<int64_t> first_two_counts(uint64_t seed, AcceptanceTest accept) {
    SpeculativeOptions o;
    o.control.adaptive = false;
    o.control.gamma = kGamma;
    o.acceptance = accept;
    SpeculativeDecoder decoder(*engine_, o);
    std::vector<int64_t> counts(vocab_ * vocab_, 0);
    for (int64_t first = 0; first < kTrials; first += kBatch) {
      std::vector<std::vector<int32_t>> out(kBatch);
      for (int64_t i = 0; i < kBatch; ++i) decoder.add(i, prompt_, sampling(seed + first + i));
      std::vector<int64_t> active(kBatch);
      for (int64_t i = 0; i < kBatch; ++i) active[i] = i;
      while (!active.empty()) {
        std::vector<SpeculativeRequest> step;
        for (int64_t i : active) step.push_back({static_cast<uint64_t>(i)});
        const auto tokens = decoder.step(step);
        std::vector<int64_t> still;
        for (size_t j = 0; j < active.size(); ++j) {
          auto& o = out[active[j]];
          o.insert(o.end(), tokens[j].begin(), tokens[j].end());
          (o.size() < 2 ? still.push_back(active[j]) : decoder.finish(active[j]));
        }
        active = still;
      }
      for (const auto& o : out) ++counts[o[0] * vocab_ + o[1]];
    }
    return counts;
  }

  std::unique_ptr<Engine> engine_;
  int64_t vocab_ = 0;
  std::vector<int32_t> prompt_;
};

// With kTrials samples, the wrong rules' first-token distributions (computed exactly from the
// full model's p and the top-1 drafter's q) differ from p enough that the test rejects them with
// power above 0.9999; the right rule's equals p.
TEST_P(SpeculativeSampling, SampleSizeDetectsWrongRules) {
  const std::vector<float> p = distribution(prompt_, {});
  ExpertBudget draft;
  draft.top_k = 1;
  const std::vector<float> q = distribution(prompt_, draft);
  auto first_token = [&](AcceptanceTest accept) {
    std::vector<double> out(vocab_), residual(vocab_);
    double kept = 0.0, total = 0.0;
    for (int64_t x = 0; x < vocab_; ++x) {
      out[x] = q[x] * accept(p[x], q[x]);
      kept += out[x];
      total += residual[x] = std::max(0.0, double(p[x]) - q[x]);
    }
    for (int64_t x = 0; x < vocab_; ++x) out[x] += (1.0 - kept) * residual[x] / total;
    return out;
  };
  const std::vector<double> right(p.begin(), p.end());
  int64_t df = -1;
  for (double v : right) df += v > 0.0;
  const std::vector<double> exact = first_token(exact_acceptance);
  for (int64_t x = 0; x < vocab_; ++x) EXPECT_NEAR(exact[x], right[x], 1e-6);
  for (AcceptanceTest wrong : {always_accept, inverted_ratio}) {
    const double lambda = test_support::noncentrality(first_token(wrong), right, kTrials);
    std::printf("%s: wrong rule noncentrality %.1f at %lld trials (df %lld)\n", GetParam().c_str(),
                lambda, static_cast<long long>(kTrials), static_cast<long long>(df));
    EXPECT_TRUE(test_support::detects_surely(lambda, df, kAlpha)) << "lambda " << lambda;
  }
}

TEST_P(SpeculativeSampling, FirstTwoTokensFollowFullModel) {
  const ChiSquare c = chi_square(first_two_counts(1, exact_acceptance), first_two_probs());
  std::printf("%s: chi2 %.1f, df %lld, p %.3f\n", GetParam().c_str(), c.statistic,
              static_cast<long long>(c.df), c.p_value);
  EXPECT_EQ(c.impossible, 0);
  EXPECT_GT(c.p_value, kAlpha) << "chi2 " << c.statistic << " df " << c.df;
}

TEST_P(SpeculativeSampling, DistributionTestRejectsAlwaysAccept) {
  const ChiSquare c = chi_square(first_two_counts(1, always_accept), first_two_probs());
  std::printf("%s, always accept: chi2 %.1f, df %lld, p %.3g, impossible %lld\n",
              GetParam().c_str(), c.statistic, static_cast<long long>(c.df), c.p_value,
              static_cast<long long>(c.impossible));
  EXPECT_TRUE(c.impossible > 0 || c.p_value < kAlpha);
}

TEST_P(SpeculativeSampling, DistributionTestRejectsInvertedRatio) {
  const ChiSquare c = chi_square(first_two_counts(1, inverted_ratio), first_two_probs());
  std::printf("%s, min(1, q/p): chi2 %.1f, df %lld, p %.3g, impossible %lld\n", GetParam().c_str(),
              c.statistic, static_cast<long long>(c.df), c.p_value,
              static_cast<long long>(c.impossible));
  EXPECT_TRUE(c.impossible > 0 || c.p_value < kAlpha);
}

INSTANTIATE_TEST_SUITE_P(Models, SpeculativeSampling, ::testing::Values("mixtral", "olmoe"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moeflow
