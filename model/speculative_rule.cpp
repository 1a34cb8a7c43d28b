#include "model/speculative_rule.h"

#include <algorithm>

#include "core/error.h"
#include "model/sampler.h"

namespace moeflow {

Verdict verify_greedy(const float* logits, const int32_t* drafts, int64_t gamma, int64_t vocab) {
  Verdict v;
  for (; v.accepted < gamma; ++v.accepted) {
    const int32_t best = argmax(logits + v.accepted * vocab, vocab);
    if (best != drafts[v.accepted]) {
      v.next = best;
      return v;
    }
  }
  v.next = argmax(logits + gamma * vocab, vocab);
  return v;
}

double exact_acceptance(double p, double q) {
  return q > 0.0 ? std::min(1.0, p / q) : 1.0;
}

double uniform01(std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

int32_t draw(const float* probs, int64_t n, double u) {
  double cumulative = 0.0;
  int32_t last = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (probs[i] <= 0.0f) continue;
    cumulative += probs[i];
    last = static_cast<int32_t>(i);
    if (u < cumulative) return last;
  }
  if (last < 0) throw Error("speculative sampling: a distribution with no mass");
  return last;
}

Verdict verify_sampled(const TargetDistribution& target,
                       const std::vector<std::vector<float>>& draft_dists, const int32_t* drafts,
                       int64_t gamma, int64_t vocab, std::mt19937_64& rng, AcceptanceTest accept) {
  if (static_cast<int64_t>(draft_dists.size()) < gamma)
    throw Error("speculative sampling: " + std::to_string(draft_dists.size()) +
                " draft distributions for " + std::to_string(gamma) + " drafts");
  Verdict v;
  for (; v.accepted < gamma; ++v.accepted) {
    const int64_t i = v.accepted;
    const float* p = target(i);
    const float* q = draft_dists[i].data();
    const int32_t x = drafts[i];
    if (uniform01(rng) < accept(p[x], q[x])) continue;
    // Rejected: the residual max(0, p - q) holds exactly the mass that accepting under-delivered.
    std::vector<float> residual(vocab);
    double total = 0.0;
    for (int64_t t = 0; t < vocab; ++t) total += residual[t] = std::max(0.0f, p[t] - q[t]);
    // p == q up to rounding (a rejection is then almost impossible): p itself is the residual.
    v.next = total > 0.0 ? draw(residual.data(), vocab, uniform01(rng) * total)
                         : draw(p, vocab, uniform01(rng));
    return v;
  }
  v.next = draw(target(gamma), vocab, uniform01(rng));
  return v;
}

}  // namespace moeflow
