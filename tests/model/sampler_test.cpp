// Sampler: greedy argmax, parameter validation, seeded reproducibility, the distribution after
// temperature / top-k / top-p against a double-precision reference, and sampled frequencies
// against that distribution.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace moeflow {
namespace {

SamplingParams params(float temperature, int64_t top_k, float top_p, uint64_t seed = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.seed = seed;
  return p;
}

// softmax(logits / T) in double, restricted to the top_k most likely tokens (ties: lower id),
// then to the smallest prefix of those (by probability) whose renormalised mass reaches top_p,
// renormalised.
std::vector<double> reference_distribution(const std::vector<float>& logits, double temperature,
                                           int64_t top_k, double top_p) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = top_k > 0 ? std::min(top_k, vocab) : vocab;
  const double m = logits[order[0]];
  std::vector<double> w(keep);
  for (int64_t i = 0; i < keep; ++i) w[i] = std::exp((logits[order[i]] - m) / temperature);
  double total = std::accumulate(w.begin(), w.end(), 0.0);
  double cumulative = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += w[i] / total;
    if (cumulative >= top_p) {
      keep = i + 1;
      break;
    }
  }
  total = std::accumulate(w.begin(), w.begin() + keep, 0.0);
  std::vector<double> probs(vocab, 0.0);
  for (int64_t i = 0; i < keep; ++i) probs[order[i]] = w[i] / total;
  return probs;
}

std::vector<float> random_logits(int64_t vocab, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> v(vocab);
  for (auto& e : v) e = dist(rng);
  return v;
}

int64_t nonzero(const std::vector<float>& p) {
  return std::count_if(p.begin(), p.end(), [](float v) { return v > 0.0f; });
}

// ---- greedy ---------------------------------------------------------------------------------

TEST(SamplerTest, GreedyPicksFirstMaximum) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
  EXPECT_EQ(argmax(logits.data(), 5), 1);
  for (uint64_t seed : {0u, 1u, 99u}) {
    Sampler s(params(0.0f, 0, 1.0f, seed));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits.data(), 5), 1);
    const auto d = s.distribution(logits.data(), 5);
    EXPECT_EQ(d, (std::vector<float>{0.0f, 1.0f, 0.0f, 0.0f, 0.0f}));
  }
  const std::vector<float> last = {-5.0f, -4.0f, -3.0f};
  EXPECT_EQ(Sampler(params(0.0f, 3, 0.5f)).sample(last.data(), 3), 2);
}

// ---- validation -----------------------------------------------------------------------------

TEST(SamplerTest, ValidateRejectsOutOfRangeValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& p : {params(-0.1f, 0, 1.0f), params(nan, 0, 1.0f), params(inf, 0, 1.0f),
                        params(1.0f, -1, 1.0f), params(1.0f, 0, 0.0f), params(1.0f, 0, -0.5f),
                        params(1.0f, 0, 1.0001f), params(1.0f, 0, nan)}) {
    EXPECT_THROW(validate(p), Error)
        << "T " << p.temperature << " k " << p.top_k << " p " << p.top_p;
    EXPECT_THROW(Sampler{p}, Error);
  }
  for (const auto& p : {params(0.0f, 0, 1.0f), params(0.7f, 40, 0.9f), params(2.0f, 1, 1e-6f)})
    EXPECT_NO_THROW(validate(p));
}

// The message names the offending parameter.
TEST(SamplerTest, ValidateNamesTheParameter) {
  auto message = [](const SamplingParams& p) {
    try {
      validate(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(params(-1.0f, 0, 1.0f)).find("temperature"), std::string::npos);
  EXPECT_NE(message(params(1.0f, -3, 1.0f)).find("top_k"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, 2.0f)).find("top_p"), std::string::npos);
}

// ---- reproducibility ------------------------------------------------------------------------

std::vector<int32_t> draw(uint64_t seed, const std::vector<float>& logits, int count) {
  Sampler s(params(1.0f, 0, 1.0f, seed));
  std::vector<int32_t> out;
  for (int i = 0; i < count; ++i)
    out.push_back(s.sample(logits.data(), static_cast<int64_t>(logits.size())));
  return out;
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDifferent) {
  std::vector<float> logits(16, 0.0f);  // uniform: every draw carries 4 bits of the generator
  const auto a = draw(42, logits, 200), b = draw(42, logits, 200), c = draw(43, logits, 200);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Not stuck on one token.
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 8u);
}

// ---- distribution ---------------------------------------------------------------------------

TEST(SamplerTest, TemperatureMatchesScaledSoftmax) {
  std::mt19937 rng(1);
  for (float t : {0.1f, 0.5f, 1.0f, 1.7f, 10.0f}) {
    const auto logits = random_logits(50, rng);
    const auto got = Sampler(params(t, 0, 1.0f)).distribution(logits.data(), 50);
    const double m = *std::max_element(logits.begin(), logits.end());
    double total = 0.0;
    for (float l : logits) total += std::exp((l - m) / t);
    for (int64_t i = 0; i < 50; ++i)
      EXPECT_NEAR(got[i], std::exp((logits[i] - m) / t) / total, 1e-7) << "T " << t << " i " << i;
  }
}

TEST(SamplerTest, TopKKeepsExactlyKMostLikely) {
  std::mt19937 rng(2);
  const auto logits = random_logits(40, rng);
  for (int64_t k : {1, 2, 5, 39, 40, 100}) {
    const auto got = Sampler(params(1.0f, k, 1.0f)).distribution(logits.data(), 40);
    EXPECT_EQ(nonzero(got), std::min<int64_t>(k, 40)) << "k " << k;
    const auto want = reference_distribution(logits, 1.0, k, 1.0);
    for (int64_t i = 0; i < 40; ++i) {
      EXPECT_EQ(got[i] > 0.0f, want[i] > 0.0) << "k " << k << " i " << i;
      EXPECT_NEAR(got[i], want[i], 1e-7) << "k " << k << " i " << i;
    }
  }
}

// Ties at the top-k boundary keep the lower token id.
TEST(SamplerTest, TopKTiesKeepLowerId) {
  const std::vector<float> logits = {0.0f, 1.0f, 1.0f, 2.0f, 1.0f};
  const auto got = Sampler(params(1.0f, 2, 1.0f)).distribution(logits.data(), 5);
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_GT(got[1], 0.0f);
  EXPECT_EQ(got[2], 0.0f);
  EXPECT_GT(got[3], 0.0f);
  EXPECT_EQ(got[4], 0.0f);
}

// Probabilities 1/2, 1/4, 1/8, 1/16, 1/16: top_p keeps the smallest prefix reaching p.
TEST(SamplerTest, TopPKeepsSmallestPrefixReachingP) {
  const std::vector<float> logits = {std::log(0.0625f), std::log(0.5f), std::log(0.125f),
                                     std::log(0.25f), std::log(0.0625f)};
  struct Case {
    float top_p;
    std::vector<float> want;
  };
  for (const auto& c :
       {Case{0.3f, {0, 1, 0, 0, 0}}, Case{0.5f - 1e-3f, {0, 1, 0, 0, 0}},
        Case{0.6f, {0, 2.0f / 3, 0, 1.0f / 3, 0}}, Case{0.74f, {0, 2.0f / 3, 0, 1.0f / 3, 0}},
        Case{0.76f, {0, 4.0f / 7, 1.0f / 7, 2.0f / 7, 0}},
        Case{0.9f, {1.0f / 15, 8.0f / 15, 2.0f / 15, 4.0f / 15, 0}},
        Case{1.0f, {0.0625f, 0.5f, 0.125f, 0.25f, 0.0625f}}}) {
    const auto got = Sampler(params(1.0f, 0, c.top_p)).distribution(logits.data(), 5);
    for (int64_t i = 0; i < 5; ++i) {
      EXPECT_NEAR(got[i], c.want[i], 1e-6) << "top_p " << c.top_p << " i " << i;
      EXPECT_EQ(got[i] > 0.0f, c.want[i] > 0.0f) << "top_p " << c.top_p << " i " << i;
    }
  }
}

// All three together on random logits, against the reference.
TEST(SamplerTest, CombinedFiltersMatchReference) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 30; ++trial) {
    const auto logits = random_logits(64, rng);
    const float t = std::uniform_real_distribution<float>(0.3f, 2.0f)(rng);
    const int64_t k = std::uniform_int_distribution<int64_t>(0, 20)(rng);
    const float p = std::uniform_real_distribution<float>(0.2f, 1.0f)(rng);
    const auto got = Sampler(params(t, k, p)).distribution(logits.data(), 64);
    const auto want = reference_distribution(logits, t, k, p);
    double sum = 0.0;
    for (int64_t i = 0; i < 64; ++i) {
      EXPECT_EQ(got[i] > 0.0f, want[i] > 0.0) << "trial " << trial << " i " << i;
      EXPECT_NEAR(got[i], want[i], 1e-6) << "trial " << trial << " i " << i;
      sum += got[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "trial " << trial;
  }
}

// ---- sampling frequencies -------------------------------------------------------------------

// 20000 draws: every token's frequency within 5 standard deviations of its probability, and
// filtered tokens never drawn.
TEST(SamplerTest, FrequenciesMatchDistribution) {
  // The last token is the least likely, so that a bias towards the last token shows.
  const std::vector<float> logits = {1.0f, 2.2f, 0.5f, -1.0f, 1.5f, 0.0f, 2.0f, -3.0f};
  const int64_t vocab = static_cast<int64_t>(logits.size());
  for (const auto& p : {params(1.0f, 0, 1.0f, 7), params(0.7f, 5, 0.9f, 8),
                        params(1.5f, 0, 0.8f, 9), params(2.0f, 3, 1.0f, 10)}) {
    Sampler s(p);
    const auto probs = s.distribution(logits.data(), vocab);
    const int draws = 20000;
    std::vector<int> counts(vocab, 0);
    for (int i = 0; i < draws; ++i) {
      const int32_t t = s.sample(logits.data(), vocab);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, vocab);
      ++counts[t];
    }
    for (int64_t i = 0; i < vocab; ++i) {
      const double freq = static_cast<double>(counts[i]) / draws;
      if (probs[i] == 0.0f) {
        EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
        continue;
      }
      const double sigma = std::sqrt(probs[i] * (1.0 - probs[i]) / draws);
      EXPECT_LT(std::fabs(freq - probs[i]), 5 * sigma + 1e-9)
          << "T " << p.temperature << " k " << p.top_k << " p " << p.top_p << " token " << i
          << " freq " << freq << " prob " << probs[i];
    }
  }
}

}  // namespace
}  // namespace moeflow
