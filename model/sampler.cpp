#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace moeflow {

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    throw Error("temperature must be a finite number >= 0, got " + std::to_string(p.temperature));
  if (p.top_k < 0) throw Error("top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    throw Error("top_p must be in (0, 1], got " + std::to_string(p.top_p));
}

int32_t argmax(const float* logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  validate(params);
}

std::vector<float> Sampler::distribution(const float* logits, int64_t vocab) const {
  std::vector<float> probs(vocab, 0.0f);
  if (params_.temperature == 0.0f) {
    probs[argmax(logits, vocab)] = 1.0f;
    return probs;
  }
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = vocab;
  if (params_.top_k > 0) keep = std::min(keep, params_.top_k);
  const double max_logit = logits[order[0]];
  std::vector<double> w(keep);
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    w[i] = std::exp((logits[order[i]] - max_logit) / params_.temperature);
    total += w[i];
  }
  if (params_.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p (at least one token).
    double cumulative = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += w[i] / total;
      if (cumulative >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(w.begin(), w.begin() + keep, 0.0);
  }
  for (int64_t i = 0; i < keep; ++i) probs[order[i]] = static_cast<float>(w[i] / total);
  return probs;
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (params_.temperature == 0.0f) return argmax(logits, vocab);
  const std::vector<float> probs = distribution(logits, vocab);
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cumulative = 0.0;
  int32_t last = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (probs[i] <= 0.0f) continue;
    cumulative += probs[i];
    last = static_cast<int32_t>(i);
    if (u < cumulative) return last;
  }
  return last;  // rounding left u just above the total
}

}  // namespace moeflow
