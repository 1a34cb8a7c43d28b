// The routing recorder on fixed routing traces, checked against values worked out by hand:
// uniform routing (FSI 0, drift 0), routing collapsed onto one expert (FSI at its maximum, the
// collapse warning), the drift between those two windows, the per-expert token counters, the
// bounded queue and the routing-matrix JSON.
#include "metrics/routing_recorder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

#include "tests/support/metrics_text.h"

namespace moeflow::metrics {
namespace {

constexpr double pi = std::numbers::pi;

double sample(const Registry& registry, const std::string& series) {
  return test_support::metric_sample(registry.exposition(), series);
}

// Top-1 routing of `tokens` tokens of `layer`: token t goes to pick(t) with weight 1.
template <typename Pick>
void route_top1(RoutingRecorder& recorder, int64_t layer, int tokens, Pick pick) {
  std::vector<int32_t> experts;
  std::vector<float> weights;
  for (int t = 0; t < tokens; ++t) {
    experts.push_back(pick(t));
    weights.push_back(1.0f);
  }
  recorder.record(layer, 1, experts, weights);
}

RoutingRecorderOptions window_of(std::size_t tokens) {
  RoutingRecorderOptions options;
  options.window_tokens = tokens;
  options.period = std::chrono::milliseconds(10000);  // only flush() reduces, for determinism
  return options;
}

TEST(RoutingRecorder, UniformThenCollapsedRouting) {
  auto registry = std::make_shared<Registry>();
  // Layers 1 and 3 are MoE, 4 experts each, one replica of each.
  RoutingRecorder recorder(registry, {1, 3}, 4, {{}, {1, 1, 1, 1}, {}, {1, 1, 1, 1}}, window_of(8));
  // No gauge before the first complete window: there is nothing to show yet.
  route_top1(recorder, 1, 7, [](int t) { return t % 4; });
  recorder.flush();
  EXPECT_TRUE(std::isnan(sample(*registry, R"(moeflow_routing_fsi{layer="1"})")));
  // Window 1 of layer 1: two tokens per expert, p̄ uniform.
  route_top1(recorder, 1, 1, [](int) { return 3; });
  recorder.flush();
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_fsi{layer="1"})"), 0.0, 1e-7);
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_entropy_nats{layer="1"})"), std::log(4.0),
              1e-12);
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_effective_experts{layer="1"})"), 4.0, 1e-9);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_drift{layer="1"})"), 0.0);  // first window
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_dead_experts{layer="1"})"), 0.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_collapse_warning{layer="1"})"), 0.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_windows_total{layer="1"})"), 1.0);

  // Window 2: every token to expert 2. FSI = 2·arccos(sqrt(1/4)) = 2π/3, its maximum; the drift
  // from uniform is the same distance; three dead experts; effective experts 1 < 0.25·4 fails,
  // but dead share 3/4 > 0.5 raises the warning.
  route_top1(recorder, 1, 8, [](int) { return 2; });
  recorder.flush();
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_fsi{layer="1"})"), 2 * pi / 3, 1e-12);
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_fsi_ratio{layer="1"})"), 1.0, 1e-12);
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_drift{layer="1"})"), 2 * pi / 3, 1e-12);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_dead_experts{layer="1"})"), 3.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_collapse_warning{layer="1"})"), 1.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_load_max_over_mean{layer="1"})"), 4.0);

  // Counters since start: expert 2 got 2 + 8 tokens, the others 2 each; layer 3 saw nothing.
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="2",layer="1"})"), 10.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="1"})"), 2.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="3"})"), 0.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_replicas{expert="3",layer="3"})"), 1.0);

  const auto json = nlohmann::json::parse(recorder.routing_json());
  EXPECT_EQ(json["experts"], 4);
  ASSERT_EQ(json["layers"].size(), 2u);
  EXPECT_EQ(json["layers"][0]["layer"], 1);
  EXPECT_EQ(json["layers"][0]["tokens"], nlohmann::json({2, 2, 10, 2}));
  EXPECT_EQ(json["layers"][0]["window_load"], nlohmann::json({0.0, 0.0, 1.0, 0.0}));
  EXPECT_EQ(json["layers"][0]["windows"], 2);
  EXPECT_TRUE(json["layers"][1]["window_load"].empty());
}

TEST(RoutingRecorder, KnownShiftGivesKnownDrift) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorder recorder(registry, {0}, 2, {{1, 1}}, window_of(4));
  route_top1(recorder, 0, 4, [](int) { return 0; });        // p̄ = (1, 0)
  route_top1(recorder, 0, 4, [](int t) { return t % 2; });  // p̄ = (1/2, 1/2)
  recorder.flush();
  // 2·arccos(sqrt(1 · 1/2)) = 2·π/4.
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_drift{layer="0"})"), pi / 2, 1e-12);
}

TEST(RoutingRecorder, TopKWeightsSpreadTheTokenAndCountEachChoice) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorder recorder(registry, {0}, 4, {{1, 2, 1, 1}}, window_of(2));
  // Two tokens, top-2: (0: 0.75, 1: 0.25) and (1: 0.75, 0: 0.25): p̄ = (1/2, 1/2, 0, 0).
  recorder.record(0, 2, std::vector<int32_t>{0, 1, 1, 0},
                  std::vector<float>{0.75f, 0.25f, 0.75f, 0.25f});
  recorder.flush();
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_entropy_nats{layer="0"})"), std::log(2.0),
              1e-12);
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_dead_experts{layer="0"})"), 2.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="0"})"), 2.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="1",layer="0"})"), 2.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_replicas{expert="1",layer="0"})"), 2.0);
  // Heterogeneity: each token's distance to p̄ is 2·arccos(sqrt(.75·.5) + sqrt(.25·.5)), / π.
  const double d = 2 * std::acos(std::sqrt(0.375) + std::sqrt(0.125));
  EXPECT_NEAR(sample(*registry, R"(moeflow_routing_heterogeneity{layer="0"})"), d / pi, 1e-6);
}

TEST(RoutingRecorder, PerLayerAggregatesWhenPerExpertIsOff) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorderOptions options = window_of(4);
  options.per_expert = false;
  RoutingRecorder recorder(registry, {0}, 4, {{1, 1, 1, 2}}, options);
  route_top1(recorder, 0, 6, [](int t) { return t % 4; });
  recorder.flush();
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="all",layer="0"})"), 6.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_replicas{expert="all",layer="0"})"), 5.0);
  EXPECT_TRUE(
      std::isnan(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="0"})")));
}

TEST(RoutingRecorder, AFullQueueSkipsAndCountsInsteadOfWaiting) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorderOptions options = window_of(1000);
  options.queue_capacity = 2;
  RoutingRecorder recorder(registry, {0}, 2, {{1, 1}}, options);
  for (int i = 0; i < 5; ++i) route_top1(recorder, 0, 1, [](int) { return 0; });
  recorder.flush();
  EXPECT_EQ(sample(*registry, "moeflow_routing_skipped_steps_total"), 3.0);
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="0"})"), 2.0);
}

TEST(RoutingRecorder, IgnoresDenseLayersAndOutOfRangeExperts) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorder recorder(registry, {1}, 2, {{}, {1, 1}}, window_of(1000));
  route_top1(recorder, 0, 3, [](int) { return 0; });                 // a dense layer: not tracked
  route_top1(recorder, 1, 3, [](int t) { return t == 1 ? 7 : 1; });  // 7 is no expert
  recorder.flush();
  EXPECT_EQ(sample(*registry, R"(moeflow_expert_tokens_total{expert="1",layer="1"})"), 2.0);
  EXPECT_TRUE(
      std::isnan(sample(*registry, R"(moeflow_expert_tokens_total{expert="0",layer="0"})")));
}

TEST(RoutingRecorder, TheBackgroundThreadReducesWithoutFlush) {
  auto registry = std::make_shared<Registry>();
  RoutingRecorderOptions options;
  options.window_tokens = 2;
  options.period = std::chrono::milliseconds(5);
  RoutingRecorder recorder(registry, {0}, 2, {{1, 1}}, options);
  route_top1(recorder, 0, 2, [](int t) { return t; });
  for (int i = 0; i < 400 && sample(*registry, R"(moeflow_routing_windows_total{layer="0"})") < 1;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(sample(*registry, R"(moeflow_routing_windows_total{layer="0"})"), 1.0);
}

}  // namespace
}  // namespace moeflow::metrics
