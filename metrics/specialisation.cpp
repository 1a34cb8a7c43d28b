#include "metrics/specialisation.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <string>

#include "core/error.h"

namespace moeflow::metrics {
namespace {

void check_same_size(std::span<const double> p, std::span<const double> q, const char* what) {
  if (p.empty() || p.size() != q.size()) {
    throw Error(std::string("metrics: ") + what + " needs two non-empty distributions of equal " +
                "length, got " + std::to_string(p.size()) + " and " + std::to_string(q.size()));
  }
}

double clamped_arccos(double x) {
  return std::acos(std::clamp(x, -1.0, 1.0));
}

}  // namespace

double entropy_nats(std::span<const double> p) {
  double h = 0.0;
  for (double x : p) {
    if (x > 0.0) h -= x * std::log(x);
  }
  return h;
}

double effective_experts(std::span<const double> p) {
  return std::exp(entropy_nats(p));
}

double fisher_rao_distance(std::span<const double> p, std::span<const double> q) {
  check_same_size(p, q, "the Fisher-Rao distance");
  double bhattacharyya = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) bhattacharyya += std::sqrt(p[i] * q[i]);
  return 2.0 * clamped_arccos(bhattacharyya);
}

double fisher_specialisation_index(std::span<const double> p) {
  if (p.empty()) throw Error("metrics: the FSI needs a non-empty distribution");
  const double n = static_cast<double>(p.size());
  double s = 0.0;
  for (double x : p) s += std::sqrt(x / n);
  return 2.0 * clamped_arccos(s);
}

double fisher_specialisation_index_max(std::size_t experts) {
  if (experts == 0) throw Error("metrics: the FSI maximum needs at least one expert");
  return 2.0 * clamped_arccos(1.0 / std::sqrt(static_cast<double>(experts)));
}

double fisher_specialisation_ratio(std::span<const double> p) {
  const double max = fisher_specialisation_index_max(p.size());
  return max > 0.0 ? fisher_specialisation_index(p) / max : 0.0;
}

LoadImbalance load_imbalance(std::span<const std::uint64_t> dispatch_counts) {
  LoadImbalance out;
  if (dispatch_counts.empty()) return out;
  const double n = static_cast<double>(dispatch_counts.size());
  double total = 0.0;
  for (std::uint64_t c : dispatch_counts) total += static_cast<double>(c);
  if (total <= 0.0) return out;
  const double mean = total / n;
  double variance = 0.0;
  for (std::uint64_t c : dispatch_counts) {
    const double d = static_cast<double>(c) - mean;
    variance += d * d;
  }
  variance /= n;
  const auto max = *std::max_element(dispatch_counts.begin(), dispatch_counts.end());
  out.max_over_mean = static_cast<double>(max) / mean;
  out.coefficient_of_variation = std::sqrt(variance) / mean;
  return out;
}

std::size_t dead_experts(std::span<const std::uint64_t> dispatch_counts) {
  return static_cast<std::size_t>(
      std::count(dispatch_counts.begin(), dispatch_counts.end(), std::uint64_t{0}));
}

bool collapse_warning(double effective_experts, double dead_share, std::size_t experts,
                      const CollapseThresholds& thresholds) {
  return effective_experts < thresholds.effective_experts_fraction * static_cast<double>(experts) ||
         dead_share > thresholds.dead_share;
}

double routing_drift(const LayerSpecialisation& before, const LayerSpecialisation& after) {
  return fisher_rao_distance(before.mean_distribution, after.mean_distribution);
}

SpecialisationWindow::SpecialisationWindow(std::size_t experts, CollapseThresholds thresholds)
    : experts_(experts), thresholds_(thresholds), sum_(experts, 0.0), dispatch_counts_(experts, 0) {
  if (experts == 0) throw Error("metrics: a specialisation window needs at least one expert");
}

void SpecialisationWindow::add(std::span<const double> probabilities,
                               std::span<const std::size_t> dispatched) {
  if (probabilities.size() != experts_) {
    throw Error("metrics: routing distribution has " + std::to_string(probabilities.size()) +
                " entries, the layer has " + std::to_string(experts_) + " experts");
  }
  add_normalised(std::vector<double>(probabilities.begin(), probabilities.end()), dispatched);
}

void SpecialisationWindow::add_top_k(std::span<const std::size_t> expert_ids,
                                     std::span<const double> weights) {
  if (expert_ids.size() != weights.size()) {
    throw Error("metrics: top-k routing has " + std::to_string(expert_ids.size()) +
                " experts but " + std::to_string(weights.size()) + " weights");
  }
  std::vector<double> p(experts_, 0.0);
  for (std::size_t i = 0; i < expert_ids.size(); ++i) {
    if (expert_ids[i] >= experts_) {
      throw Error("metrics: top-k expert " + std::to_string(expert_ids[i]) + " out of range (" +
                  std::to_string(experts_) + " experts)");
    }
    p[expert_ids[i]] += weights[i];
  }
  add_normalised(std::move(p), expert_ids);
}

void SpecialisationWindow::add_normalised(std::vector<double> p,
                                          std::span<const std::size_t> dispatched) {
  double total = 0.0;
  for (double x : p) {
    if (!std::isfinite(x) || x < 0.0) {
      throw Error("metrics: routing probabilities must be finite and non-negative");
    }
    total += x;
  }
  if (total <= 0.0) throw Error("metrics: routing probabilities sum to zero");
  for (std::size_t e : dispatched) {
    if (e >= experts_) {
      throw Error("metrics: dispatched expert " + std::to_string(e) + " out of range (" +
                  std::to_string(experts_) + " experts)");
    }
  }
  for (std::size_t i = 0; i < experts_; ++i) {
    p[i] /= total;
    sum_[i] += p[i];
  }
  for (std::size_t e : dispatched) ++dispatch_counts_[e];
  distributions_.insert(distributions_.end(), p.begin(), p.end());
  ++tokens_;
}

LayerSpecialisation SpecialisationWindow::summary() const {
  if (tokens_ == 0) throw Error("metrics: specialisation summary of an empty window");
  LayerSpecialisation s;
  s.tokens = tokens_;
  s.experts = experts_;
  s.mean_distribution.resize(experts_);
  for (std::size_t i = 0; i < experts_; ++i) {
    s.mean_distribution[i] = sum_[i] / static_cast<double>(tokens_);
  }
  s.dispatch_counts = dispatch_counts_;
  s.entropy_nats = entropy_nats(s.mean_distribution);
  s.effective_experts = std::exp(s.entropy_nats);
  const LoadImbalance load = load_imbalance(dispatch_counts_);
  s.load_max_over_mean = load.max_over_mean;
  s.load_coefficient_of_variation = load.coefficient_of_variation;
  s.fisher_specialisation_index = fisher_specialisation_index(s.mean_distribution);
  s.fisher_specialisation_ratio = fisher_specialisation_ratio(s.mean_distribution);
  double distance = 0.0;
  for (std::size_t t = 0; t < tokens_; ++t) {
    const std::span<const double> row(distributions_.data() + t * experts_, experts_);
    distance += fisher_rao_distance(row, s.mean_distribution);
  }
  s.heterogeneity = distance / static_cast<double>(tokens_) / std::numbers::pi;
  s.dead_experts = dead_experts(dispatch_counts_);
  s.dead_share = static_cast<double>(s.dead_experts) / static_cast<double>(experts_);
  s.collapse_warning = collapse_warning(s.effective_experts, s.dead_share, experts_, thresholds_);
  return s;
}

void SpecialisationWindow::reset() {
  tokens_ = 0;
  distributions_.clear();
  std::fill(sum_.begin(), sum_.end(), 0.0);
  std::fill(dispatch_counts_.begin(), dispatch_counts_.end(), 0);
}

}  // namespace moeflow::metrics
