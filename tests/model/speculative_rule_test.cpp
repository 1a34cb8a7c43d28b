// The acceptance rules of speculative decoding on a synthetic model with a 6-token vocabulary,
// where every distribution is known exactly. Greedy: the longest matching prefix and the
// correction. Sampled: the joint distribution of the first two emitted tokens matches the target
// model's (Pearson chi-square, significance 0.001, fixed seeds), and the same test, with the same
// sample size, rejects two wrong acceptance rules (always accept; min(1, q/p)).
#include "model/speculative_rule.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/sampler.h"
#include "tests/model/chi_square.h"

namespace moeflow {
namespace {

using test_support::chi_square;
using test_support::ChiSquare;

constexpr int64_t kVocab = 6;
constexpr double kAlpha = 0.001;  // significance of every distribution test here
// Trials per test: enough that both wrong rules below shift the statistic far past the critical
// value (checked analytically in SampleSizeDetectsWrongRules), few enough to run in a second.
constexpr int64_t kTrials = 20000;

double always_accept(double, double) {
  return 1.0;
}
double inverted_ratio(double p, double q) {
  return p > 0.0 ? std::min(1.0, q / p) : 1.0;
}

// A synthetic target model p and a draft q that resembles it: logits drawn from a generator
// seeded by the prefix, the draft's perturbed; both through the same sampling transform.
class SyntheticModels {
 public:
  SyntheticModels(const SamplingParams& params, float draft_noise)
      : sampler_(params), noise_(draft_noise) {}

  std::vector<float> target(const std::vector<int32_t>& prefix) const {
    const std::vector<float> l = logits(prefix, 0.0f);
    return sampler_.distribution(l.data(), kVocab);
  }
  std::vector<float> draft(const std::vector<int32_t>& prefix) const {
    const std::vector<float> l = logits(prefix, noise_);
    return sampler_.distribution(l.data(), kVocab);
  }

 private:
  std::vector<float> logits(const std::vector<int32_t>& prefix, float noise) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : prefix) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
    std::mt19937_64 rng(h);
    std::normal_distribution<float> n(0.0f, 1.5f);
    std::vector<float> l(kVocab);
    for (auto& x : l) x = n(rng);
    std::mt19937_64 perturb(h ^ 0x9e3779b97f4a7c15ull);
    std::normal_distribution<float> e(0.0f, 1.0f);
    for (auto& x : l) x += noise * e(perturb);
    return l;
  }
  Sampler sampler_;
  float noise_;
};

// One speculative round after `prefix`, as the decoder runs it: γ drafts drawn from q one after
// another, then the verdict against p at each of them.
std::vector<int32_t> round(const SyntheticModels& m, const std::vector<int32_t>& prefix,
                           int64_t gamma, std::mt19937_64& rng, AcceptanceTest accept) {
  std::vector<int32_t> drafts, context = prefix;
  std::vector<std::vector<float>> q;
  for (int64_t i = 0; i < gamma; ++i) {
    q.push_back(m.draft(context));
    drafts.push_back(draw(q.back().data(), kVocab, uniform01(rng)));
    context.push_back(drafts.back());
  }
  std::vector<std::vector<float>> p;
  auto target = [&](int64_t i) -> const float* {
    while (static_cast<int64_t>(p.size()) <= i) {
      std::vector<int32_t> c = prefix;
      c.insert(c.end(), drafts.begin(), drafts.begin() + p.size());
      p.push_back(m.target(c));
    }
    return p[i].data();
  };
  const Verdict v = verify_sampled(target, q, drafts.data(), gamma, kVocab, rng, accept);
  std::vector<int32_t> out(drafts.begin(), drafts.begin() + v.accepted);
  out.push_back(v.next);
  return out;
}

const std::vector<int32_t> kPrefix = {3, 1, 4};

// Counts of the first two emitted tokens (x, y) as cell x * V + y, over kTrials generations.
std::vector<int64_t> first_two_counts(const SyntheticModels& m, int64_t gamma, uint64_t seed,
                                      AcceptanceTest accept) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> counts(kVocab * kVocab, 0);
  for (int64_t t = 0; t < kTrials; ++t) {
    std::vector<int32_t> out;
    while (out.size() < 2) {
      std::vector<int32_t> context = kPrefix;
      context.insert(context.end(), out.begin(), out.end());
      const std::vector<int32_t> more = round(m, context, gamma, rng, accept);
      out.insert(out.end(), more.begin(), more.end());
    }
    ++counts[out[0] * kVocab + out[1]];
  }
  return counts;
}

// The exact joint distribution of the first two tokens under the target model.
std::vector<double> first_two_probs(const SyntheticModels& m) {
  std::vector<double> probs(kVocab * kVocab);
  const std::vector<float> p0 = m.target(kPrefix);
  for (int32_t x = 0; x < kVocab; ++x) {
    std::vector<int32_t> c = kPrefix;
    c.push_back(x);
    const std::vector<float> p1 = m.target(c);
    for (int32_t y = 0; y < kVocab; ++y) probs[x * kVocab + y] = double(p0[x]) * p1[y];
  }
  return probs;
}

// The exact distribution of the first emitted token under acceptance rule `accept` (γ >= 1):
// accept the draft x ~ q with probability a(p(x), q(x)), else draw from normalise(max(0, p - q)).
std::vector<double> first_token_probs(const SyntheticModels& m, AcceptanceTest accept) {
  const std::vector<float> p = m.target(kPrefix), q = m.draft(kPrefix);
  std::vector<double> out(kVocab), residual(kVocab);
  double kept = 0.0, total = 0.0;
  for (int64_t x = 0; x < kVocab; ++x) {
    out[x] = q[x] * accept(p[x], q[x]);
    kept += out[x];
    total += residual[x] = std::max(0.0, double(p[x]) - q[x]);
  }
  for (int64_t x = 0; x < kVocab; ++x) out[x] += (1.0 - kept) * residual[x] / total;
  return out;
}

SamplingParams params(float temperature, int64_t top_k, float top_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

struct Setting {
  std::string name;
  SamplingParams sampling;
  int64_t gamma;
};

const std::vector<Setting> kSettings = {
    {"plain_T1_gamma1", params(1.0f, 0, 1.0f), 1},
    {"plain_T1_gamma3", params(1.0f, 0, 1.0f), 3},
    // top-k and top-p cut different tokens from p and q: drafts outside p's support must never
    // be emitted.
    {"topk5_topp09_T08_gamma2", params(0.8f, 5, 0.9f), 2},
    {"T13_gamma4", params(1.3f, 0, 1.0f), 4},
};

TEST(SpeculativeRule, GreedyAcceptsLongestMatchingPrefixThenCorrects) {
  // Rows of the full model's logits whose argmaxes are 2, 0, 5, 1.
  std::vector<float> logits(4 * kVocab, 0.0f);
  const int32_t best[] = {2, 0, 5, 1};
  for (int r = 0; r < 4; ++r) logits[r * kVocab + best[r]] = 1.0f;
  const int32_t all_match[] = {2, 0, 5};
  Verdict v = verify_greedy(logits.data(), all_match, 3, kVocab);
  EXPECT_EQ(v.accepted, 3);
  EXPECT_EQ(v.next, 1);  // the bonus token
  const int32_t second_wrong[] = {2, 3, 5};
  v = verify_greedy(logits.data(), second_wrong, 3, kVocab);
  EXPECT_EQ(v.accepted, 1);
  EXPECT_EQ(v.next, 0);  // the correction
  const int32_t first_wrong[] = {4, 0, 5};
  v = verify_greedy(logits.data(), first_wrong, 3, kVocab);
  EXPECT_EQ(v.accepted, 0);
  EXPECT_EQ(v.next, 2);
}

TEST(SpeculativeRule, IdenticalDraftIsAlwaysAccepted) {
  const SyntheticModels m(params(1.0f, 0, 1.0f), 0.0f);
  std::mt19937_64 rng(7);
  for (int t = 0; t < 200; ++t) EXPECT_EQ(round(m, kPrefix, 4, rng, exact_acceptance).size(), 5u);
}

// The chosen sample size is large enough: for every setting, both wrong rules move the first
// token's distribution so far that the chi-square test at kAlpha rejects them with power above
// 0.9999 (normal approximation of the noncentral chi-square), and the right rule gives p exactly.
TEST(SpeculativeRule, SampleSizeDetectsWrongRules) {
  for (const Setting& s : kSettings) {
    SCOPED_TRACE(s.name);
    const SyntheticModels m(s.sampling, 1.0f);
    const std::vector<float> pf = m.target(kPrefix);
    const std::vector<double> p(pf.begin(), pf.end());
    const std::vector<double> right = first_token_probs(m, exact_acceptance);
    for (int64_t x = 0; x < kVocab; ++x) EXPECT_NEAR(right[x], p[x], 1e-6);
    int64_t df = -1;
    for (double v : p) df += v > 0.0;
    for (AcceptanceTest wrong : {always_accept, inverted_ratio}) {
      const double lambda = test_support::noncentrality(first_token_probs(m, wrong), p, kTrials);
      EXPECT_TRUE(test_support::detects_surely(lambda, df, kAlpha)) << "lambda " << lambda;
    }
  }
}

TEST(SpeculativeRule, SampledTokensFollowTargetDistribution) {
  uint64_t seed = 1000;
  for (const Setting& s : kSettings) {
    SCOPED_TRACE(s.name);
    const SyntheticModels m(s.sampling, 1.0f);
    const ChiSquare c =
        chi_square(first_two_counts(m, s.gamma, seed++, exact_acceptance), first_two_probs(m));
    EXPECT_EQ(c.impossible, 0);
    EXPECT_GT(c.p_value, kAlpha) << "chi2 " << c.statistic << " df " << c.df;
    std::printf("%s: chi2 %.1f, df %lld, p %.3f\n", s.name.c_str(), c.statistic,
                static_cast<long long>(c.df), c.p_value);
  }
}

TEST(SpeculativeRule, DistributionTestRejectsWrongAcceptanceRules) {
  uint64_t seed = 2000;
  for (const Setting& s : kSettings) {
    const SyntheticModels m(s.sampling, 1.0f);
    for (auto [name, wrong] : {std::pair<const char*, AcceptanceTest>{"always", always_accept},
                               {"q_over_p", inverted_ratio}}) {
      SCOPED_TRACE(s.name + " " + name);
      const ChiSquare c =
          chi_square(first_two_counts(m, s.gamma, seed++, wrong), first_two_probs(m));
      EXPECT_TRUE(c.impossible > 0 || c.p_value < kAlpha)
          << "chi2 " << c.statistic << " df " << c.df << " p " << c.p_value;
      std::printf("%s, rule %s: chi2 %.1f, df %lld, p %.3g, impossible tokens %lld\n",
                  s.name.c_str(), name, c.statistic, static_cast<long long>(c.df), c.p_value,
                  static_cast<long long>(c.impossible));
    }
  }
}

}  // namespace
}  // namespace moeflow
