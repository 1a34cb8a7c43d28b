#pragma once
// The verifier's acceptance rules of speculative decoding, for one sequence's γ drafted tokens.
// Greedy: the longest prefix equal to the full model's argmax, then its correction (or bonus)
// token. Sampled (Leviathan et al. 2023, Chen et al. 2023): accept draft x with probability
// min(1, p(x) / q(x)); on the first rejection draw from normalise(max(0, p − q)); if every draft
// is accepted draw the bonus token from p. The output then follows exactly the full model's p.
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace moeflow {

// How many drafted tokens (a prefix) are accepted, and the full model's token after them: the
// correction after a rejection, or the bonus token when all were accepted.
struct Verdict {
  int64_t accepted = 0;
  int32_t next = 0;
};

// logits: [gamma + 1, vocab], the full model's at the last accepted token and at each draft.
Verdict verify_greedy(const float* logits, const int32_t* drafts, int64_t gamma, int64_t vocab);

// Probability of accepting a drafted token from its target (p) and draft (q) probabilities.
// Only exact_acceptance is correct; the parameter exists so that the tests can show that their
// distribution test rejects a wrong rule.
using AcceptanceTest = double (*)(double p, double q);
double exact_acceptance(double p, double q);  // min(1, p / q)

// target(i): the full model's distribution p_i ([vocab]) after the last accepted token and drafts
// 0..i-1, i in [0, gamma]; asked for lazily and in order, so a rejection at i costs only p_0..p_i.
// draft_dists[i]: q_i ([vocab]), from which drafts[i] was drawn.
using TargetDistribution = std::function<const float*(int64_t i)>;
Verdict verify_sampled(const TargetDistribution& target,
                       const std::vector<std::vector<float>>& draft_dists, const int32_t* drafts,
                       int64_t gamma, int64_t vocab, std::mt19937_64& rng,
                       AcceptanceTest accept = exact_acceptance);

// The index whose cumulative probability first exceeds u (u uniform in [0, 1)); zero entries are
// never drawn, and rounding that leaves u above the total gives the last non-zero entry.
int32_t draw(const float* probs, int64_t n, double u);
double uniform01(std::mt19937_64& rng);

}  // namespace moeflow
