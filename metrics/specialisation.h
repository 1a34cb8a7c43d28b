#pragma once
// Per-layer routing statistics over a window of routed tokens.
//
// From "Geometric Metrics for MoE Specialization" (arXiv 2604.14500):
//   - the mean routing distribution p̄ over N experts, its entropy H(p̄) in nats and the effective
//     number of experts exp(H(p̄));
//   - the Fisher Specialisation Index FSI = 2·arccos(Σ_i sqrt(p̄_i / N)), the Fisher–Rao distance
//     from p̄ to the uniform distribution, and its maximum 2·arccos(1/sqrt(N)) (one-hot p̄);
//   - routing drift between two windows: the Fisher–Rao distance 2·arccos(Σ_i sqrt(p_i q_i)).
// Ours, not the paper's:
//   - load imbalance from dispatch counts: max/mean and coefficient of variation (population std
//     over mean);
//   - heterogeneity: the mean Fisher–Rao distance of each token's distribution to p̄, divided by π
//     (the largest Fisher–Rao distance, between disjoint supports) so that it lies in [0, 1];
//   - dead experts (no token dispatched in the window) and dead share = dead / N;
//   - the collapse warning: effective experts < 0.25·N or dead share > 0.5 (both thresholds are
//     parameters).
// Every arccos argument is clamped to [−1, 1] so rounding cannot produce NaN.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace moeflow::metrics {

struct CollapseThresholds {
  double effective_experts_fraction = 0.25;  // warn when effective experts < this · N
  double dead_share = 0.5;                   // warn when dead / N > this
};

struct LayerSpecialisation {
  std::size_t tokens = 0;
  std::size_t experts = 0;
  std::vector<double> mean_distribution;       // p̄
  std::vector<std::uint64_t> dispatch_counts;  // tokens dispatched to each expert
  double entropy_nats = 0.0;
  double effective_experts = 0.0;
  double load_max_over_mean = 0.0;
  double load_coefficient_of_variation = 0.0;
  double fisher_specialisation_index = 0.0;
  double fisher_specialisation_ratio = 0.0;  // FSI / its maximum, in [0, 1]
  double heterogeneity = 0.0;                // in [0, 1]
  std::size_t dead_experts = 0;
  double dead_share = 0.0;
  bool collapse_warning = false;  // exported as a 0/1 gauge
};

struct LoadImbalance {
  double max_over_mean = 0.0;             // 0 when no token was dispatched
  double coefficient_of_variation = 0.0;  // population std / mean; 0 when no token was dispatched
};

// Free functions, one per formula. Distributions are probability vectors of equal length; a
// length mismatch or an empty vector throws moeflow::Error.
double entropy_nats(std::span<const double> p);
double effective_experts(std::span<const double> p);
double fisher_rao_distance(std::span<const double> p, std::span<const double> q);
double fisher_specialisation_index(std::span<const double> p);
double fisher_specialisation_index_max(std::size_t experts);
// FSI / maximum; 0 for a single expert, where the maximum is 0.
double fisher_specialisation_ratio(std::span<const double> p);
LoadImbalance load_imbalance(std::span<const std::uint64_t> dispatch_counts);
std::size_t dead_experts(std::span<const std::uint64_t> dispatch_counts);
bool collapse_warning(double effective_experts, double dead_share, std::size_t experts,
                      const CollapseThresholds& thresholds = {});
// Drift between two windows: the Fisher–Rao distance between their mean distributions.
double routing_drift(const LayerSpecialisation& before, const LayerSpecialisation& after);

// Accumulates the tokens routed by one layer. Keeps every token's distribution (tokens · N
// doubles) because heterogeneity needs p̄, which is known only at the end of the window.
class SpecialisationWindow {
 public:
  explicit SpecialisationWindow(std::size_t experts, CollapseThresholds thresholds = {});

  // One token: the router's full softmax over N experts (normalised here to sum 1; negative,
  // non-finite or all-zero entries throw) and the experts it was dispatched to.
  void add(std::span<const double> probabilities, std::span<const std::size_t> dispatched);
  // One token from top-k routing only: the chosen experts and their weights, spread as a sparse
  // distribution (weights normalised to sum 1, zero elsewhere); the token counts as dispatched to
  // each chosen expert.
  void add_top_k(std::span<const std::size_t> expert_ids, std::span<const double> weights);

  std::size_t tokens() const { return tokens_; }
  std::size_t experts() const { return experts_; }
  // The statistics of the tokens added so far; throws moeflow::Error on an empty window.
  LayerSpecialisation summary() const;
  void reset();

 private:
  void add_normalised(std::vector<double> p, std::span<const std::size_t> dispatched);

  std::size_t experts_;
  CollapseThresholds thresholds_;
  std::size_t tokens_ = 0;
  std::vector<double> distributions_;  // tokens_ rows of experts_
  std::vector<double> sum_;
  std::vector<std::uint64_t> dispatch_counts_;
};

}  // namespace moeflow::metrics
