// Routing specialisation statistics against values worked out by hand: uniform routing, routing
// collapsed onto one expert, known shifts between windows, a small load-imbalance case.
#include "metrics/specialisation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace moeflow::metrics {
namespace {

constexpr double pi = std::numbers::pi;
constexpr double eps = 1e-12;

using Dist = std::vector<double>;
using Ids = std::vector<std::size_t>;

TEST(Specialisation, UniformRoutingIsUnspecialised) {
  constexpr std::size_t n = 8;
  SpecialisationWindow window(n);
  const Dist uniform(n, 1.0 / n);
  for (std::size_t t = 0; t < 4 * n; ++t) window.add(uniform, Ids{t % n});
  const LayerSpecialisation s = window.summary();
  EXPECT_EQ(s.tokens, 4 * n);
  EXPECT_NEAR(s.entropy_nats, std::log(8.0), eps);
  EXPECT_NEAR(s.effective_experts, 8.0, 1e-9);
  // Σ sqrt(p̄_i / N) = 1 up to rounding; the clamp keeps acos finite. acos near 1 loses about
  // half the digits, so the tolerance is sqrt(eps)-sized.
  EXPECT_NEAR(s.fisher_specialisation_index, 0.0, 1e-7);
  EXPECT_NEAR(s.fisher_specialisation_ratio, 0.0, 1e-7);
  EXPECT_NEAR(s.heterogeneity, 0.0, 1e-7);
  EXPECT_DOUBLE_EQ(s.load_max_over_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.load_coefficient_of_variation, 0.0);
  EXPECT_EQ(s.dead_experts, 0u);
  EXPECT_DOUBLE_EQ(s.dead_share, 0.0);
  EXPECT_FALSE(s.collapse_warning);
}

TEST(Specialisation, OneHotRoutingIsCollapsed) {
  constexpr std::size_t n = 4;
  SpecialisationWindow window(n);
  for (int t = 0; t < 10; ++t) window.add(Dist{0, 0, 1, 0}, Ids{2});
  const LayerSpecialisation s = window.summary();
  // FSI = 2·arccos(sqrt(1/4)) = 2·arccos(1/2) = 2π/3, which is the maximum for N = 4.
  EXPECT_NEAR(fisher_specialisation_index_max(n), 2.0 * pi / 3.0, eps);
  EXPECT_NEAR(s.fisher_specialisation_index, 2.0 * pi / 3.0, eps);
  EXPECT_NEAR(s.fisher_specialisation_ratio, 1.0, eps);
  EXPECT_NEAR(s.entropy_nats, 0.0, eps);
  EXPECT_NEAR(s.effective_experts, 1.0, eps);
  EXPECT_NEAR(s.heterogeneity, 0.0, 1e-7);
  EXPECT_EQ(s.dead_experts, n - 1);
  EXPECT_DOUBLE_EQ(s.dead_share, 0.75);
  // Counts (0, 0, 10, 0): mean 2.5, max/mean 4; std sqrt((3·2.5² + 7.5²)/4) = sqrt(18.75).
  EXPECT_DOUBLE_EQ(s.load_max_over_mean, 4.0);
  EXPECT_NEAR(s.load_coefficient_of_variation, std::sqrt(18.75) / 2.5, eps);
  EXPECT_TRUE(s.collapse_warning);
}

TEST(Specialisation, DriftBetweenKnownDistributions) {
  EXPECT_NEAR(fisher_rao_distance(Dist{1, 0}, Dist{0, 1}), pi, eps);
  EXPECT_NEAR(fisher_rao_distance(Dist{0.5, 0.5}, Dist{1, 0}), 2.0 * std::acos(std::sqrt(0.5)),
              eps);
  EXPECT_NEAR(fisher_rao_distance(Dist{0.5, 0.5}, Dist{1, 0}), pi / 2.0, eps);
  EXPECT_THROW(fisher_rao_distance(Dist{1}, Dist{0.5, 0.5}), Error);

  SpecialisationWindow a(2);
  a.add(Dist{1, 0}, Ids{0});
  SpecialisationWindow b(2);
  b.add_top_k(Ids{1}, Dist{0.9});  // one chosen expert: the sparse distribution is (0, 1)
  const LayerSpecialisation sa = a.summary();
  const LayerSpecialisation sb = b.summary();
  EXPECT_NEAR(routing_drift(sa, sb), pi, eps);
  EXPECT_NEAR(routing_drift(sa, sa), 0.0, eps);
  EXPECT_NEAR(routing_drift(sb, sb), 0.0, eps);
}

TEST(Specialisation, DriftOfAWindowWithItselfIsZero) {
  SpecialisationWindow window(3);
  window.add(Dist{0.2, 0.3, 0.5}, Ids{2});
  window.add(Dist{0.6, 0.1, 0.3}, Ids{0});
  const LayerSpecialisation s = window.summary();
  EXPECT_NEAR(routing_drift(s, s), 0.0, 1e-7);
}

TEST(Specialisation, LoadImbalanceSmallCase) {
  // Counts (4, 2, 1, 1): mean 2, max/mean 2; deviations (2, 0, −1, −1), variance 6/4 = 1.5.
  const std::vector<std::uint64_t> counts{4, 2, 1, 1};
  const LoadImbalance load = load_imbalance(counts);
  EXPECT_DOUBLE_EQ(load.max_over_mean, 2.0);
  EXPECT_NEAR(load.coefficient_of_variation, std::sqrt(1.5) / 2.0, eps);
  EXPECT_EQ(dead_experts(counts), 0u);

  const std::vector<std::uint64_t> none{0, 0, 0};
  EXPECT_DOUBLE_EQ(load_imbalance(none).max_over_mean, 0.0);
  EXPECT_EQ(dead_experts(none), 3u);

  // The same counts through a window, with top-k = 2 dispatch.
  SpecialisationWindow window(4);
  window.add_top_k(Ids{0, 1}, Dist{0.5, 0.5});
  window.add_top_k(Ids{0, 1}, Dist{0.5, 0.5});
  window.add_top_k(Ids{0, 2}, Dist{0.5, 0.5});
  window.add_top_k(Ids{0, 3}, Dist{0.5, 0.5});
  const LayerSpecialisation s = window.summary();
  EXPECT_EQ(s.dispatch_counts, counts);
  EXPECT_DOUBLE_EQ(s.load_max_over_mean, 2.0);
  EXPECT_NEAR(s.load_coefficient_of_variation, std::sqrt(1.5) / 2.0, eps);
}

TEST(Specialisation, HeterogeneityOfDisjointTokens) {
  // Tokens (1, 0) and (0, 1): p̄ = (0.5, 0.5); each is 2·arccos(sqrt(0.5)) = π/2 from p̄, so the
  // mean distance over π is 1/2.
  SpecialisationWindow window(2);
  window.add(Dist{1, 0}, Ids{0});
  window.add(Dist{0, 1}, Ids{1});
  const LayerSpecialisation s = window.summary();
  EXPECT_NEAR(s.mean_distribution[0], 0.5, eps);
  EXPECT_NEAR(s.heterogeneity, 0.5, eps);
  EXPECT_NEAR(s.fisher_specialisation_index, 0.0, 1e-7);
  EXPECT_NEAR(s.effective_experts, 2.0, eps);
}

TEST(Specialisation, TopKWeightsAreNormalised) {
  SpecialisationWindow window(4);
  window.add_top_k(Ids{3, 1}, Dist{0.3, 0.1});  // spread as (0, 0.25, 0, 0.75)
  const LayerSpecialisation s = window.summary();
  EXPECT_NEAR(s.mean_distribution[1], 0.25, eps);
  EXPECT_NEAR(s.mean_distribution[3], 0.75, eps);
  EXPECT_NEAR(s.entropy_nats, -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), eps);
  EXPECT_EQ(s.dead_experts, 2u);
}

TEST(Specialisation, CollapseRuleAndThresholds) {
  // N = 8: warn below 2 effective experts or above half the experts dead.
  EXPECT_FALSE(collapse_warning(2.0, 0.5, 8));
  EXPECT_TRUE(collapse_warning(1.99, 0.0, 8));
  EXPECT_TRUE(collapse_warning(8.0, 0.51, 8));
  EXPECT_FALSE(collapse_warning(1.99, 0.0, 8, {.effective_experts_fraction = 0.2}));
  EXPECT_TRUE(collapse_warning(8.0, 0.3, 8, {.dead_share = 0.25}));

  // Spread routing but only one expert dispatched to: dead share 3/4 trips the warning.
  SpecialisationWindow window(4);
  window.add(Dist{0.25, 0.25, 0.25, 0.25}, Ids{0});
  EXPECT_TRUE(window.summary().collapse_warning);
  SpecialisationWindow lenient(4, {.effective_experts_fraction = 0.25, .dead_share = 0.8});
  lenient.add(Dist{0.25, 0.25, 0.25, 0.25}, Ids{0});
  EXPECT_FALSE(lenient.summary().collapse_warning);
}

TEST(Specialisation, RefusesBadInput) {
  EXPECT_THROW(SpecialisationWindow(0), Error);
  SpecialisationWindow window(3);
  EXPECT_THROW(window.summary(), Error);  // empty
  EXPECT_THROW(window.add(Dist{0.5, 0.5}, Ids{0}), Error);
  EXPECT_THROW(window.add(Dist{0.5, 0.5, -0.1}, Ids{0}), Error);
  EXPECT_THROW(window.add(Dist{0, 0, 0}, Ids{0}), Error);
  EXPECT_THROW(window.add(Dist{0.5, 0.5, NAN}, Ids{0}), Error);
  EXPECT_THROW(window.add(Dist{0.5, 0.5, 0}, Ids{3}), Error);
  EXPECT_THROW(window.add_top_k(Ids{0, 1}, Dist{1}), Error);
  EXPECT_THROW(window.add_top_k(Ids{5}, Dist{1}), Error);
  EXPECT_EQ(window.tokens(), 0u);
  window.add(Dist{1, 1, 2}, Ids{2});  // normalised to (0.25, 0.25, 0.5)
  EXPECT_NEAR(window.summary().mean_distribution[2], 0.5, eps);
  window.reset();
  EXPECT_EQ(window.tokens(), 0u);
  EXPECT_THROW(window.summary(), Error);
}

TEST(Specialisation, SingleExpertLayer) {
  SpecialisationWindow window(1);
  window.add(Dist{1}, Ids{0});
  const LayerSpecialisation s = window.summary();
  EXPECT_DOUBLE_EQ(s.fisher_specialisation_index, 0.0);
  EXPECT_DOUBLE_EQ(s.fisher_specialisation_ratio, 0.0);
  EXPECT_DOUBLE_EQ(s.effective_experts, 1.0);
  EXPECT_FALSE(s.collapse_warning);
}

}  // namespace
}  // namespace moeflow::metrics
