// The autoscaler's rules on loads worked out by hand.
#include "scaling/scaling_policy.h"

#include <gtest/gtest.h>

namespace moeflow {
namespace {

ScalingSpec spec(const std::string& policy = "threshold") {
  ScalingSpec s;
  s.enabled = true;
  s.policy = policy;
  s.hot_load = 1.5;
  s.cold_load = 0.5;
  s.max_replicas = 3;
  s.memory_mb = 100;
  return s;
}

// One MoE layer of four experts, one graph holder each, nothing added.
ScalingInput one_layer(std::vector<double> tokens) {
  ScalingInput in;
  in.tokens = {std::move(tokens)};
  in.graph_replicas = {{1, 1, 1, 1}};
  in.added = {{0, 0, 0, 0}};
  in.retirable = {{0, 0, 0, 0}};
  in.expert_mb = 10;
  return in;
}

TEST(ScalingPolicy, OffDecidesNothing) {
  ScalingSpec s = spec();
  s.enabled = false;
  EXPECT_TRUE(decide_scaling(s, one_layer({400, 0, 0, 0})).empty());
}

TEST(ScalingPolicy, AHotExpertGetsAReplica) {
  // Mean 100; expert 0 carries 250 = 2.5x the mean > 1.5; expert 1 at 1.0x stays.
  const auto actions = decide_scaling(spec(), one_layer({250, 100, 40, 10}));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ScalingAction::Kind::add);
  EXPECT_EQ(actions[0].expert, 0);
  EXPECT_EQ(actions[0].reason, "hot");
}

TEST(ScalingPolicy, UniformLoadChangesNothing) {
  EXPECT_TRUE(decide_scaling(spec(), one_layer({100, 100, 100, 100})).empty());
}

TEST(ScalingPolicy, MaxReplicasAndMemoryBudgetBound) {
  ScalingInput in = one_layer({250, 250, 0, 0});  // mean 125: both at 2x
  in.graph_replicas = {{3, 1, 1, 1}};             // expert 0 already at max_replicas
  auto actions = decide_scaling(spec(), in);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].expert, 1);
  in.graph_replicas = {{1, 1, 1, 1}};
  in.added = {{0, 0, 1, 0}};  // budget 100 MB / 10 MB = 10, one used... make it tight:
  in.expert_mb = 50;          // budget 2 replicas, one used: one more only
  in.retirable = {{0, 0, 0, 0}};
  actions = decide_scaling(spec(), in);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].expert, 0);
}

TEST(ScalingPolicy, ColdAddedReplicasRetireOnlyAfterTheCooldown) {
  ScalingInput in = one_layer({60, 100, 120, 120});  // mean 100
  in.added = {{1, 0, 0, 0}};                         // expert 0: 2 replicas, 60 tokens
  // Without the added replica: 60 / 1 = 0.6x the mean, not under 0.5: it stays.
  EXPECT_TRUE(decide_scaling(spec(), in).empty());
  in.tokens = {{40, 100, 130, 130}};  // 40 / 1 = 0.4x: cold, but too young
  EXPECT_TRUE(decide_scaling(spec(), in).empty());
  in.retirable = {{1, 0, 0, 0}};
  const auto actions = decide_scaling(spec(), in);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ScalingAction::Kind::retire);
  EXPECT_EQ(actions[0].reason, "cold");
}

TEST(ScalingPolicy, AnIdleLayerRetiresItsAddedReplicas) {
  ScalingInput in = one_layer({0, 0, 0, 0});
  in.added = {{2, 0, 0, 0}};
  in.retirable = {{2, 0, 0, 0}};
  const auto actions = decide_scaling(spec(), in);
  ASSERT_EQ(actions.size(), 1u);  // one per decision: the load is measured again in between
  EXPECT_EQ(actions[0].reason, "idle");
}

TEST(ScalingPolicy, EplbSpreadsTheBudgetByLoadPerReplica) {
  // Mean 100. Budget 3 replicas (30 MB / 10 MB). Loads: 300 (3x), 60, 20, 20.
  // Replica 1 -> expert 0 (3x -> 1.5x); replica 2 -> expert 0 (1.5x -> 1x); then nothing is
  // above the mean: the third stays unused.
  ScalingSpec s = spec("eplb");
  s.memory_mb = 30;
  const auto actions = decide_scaling(s, one_layer({300, 60, 20, 20}));
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].expert, 0);
  EXPECT_EQ(actions[1].expert, 0);
  EXPECT_EQ(actions[0].reason, "eplb");
}

TEST(ScalingPolicy, EplbRetiresWhatTheNewAssignmentDropsWhenOldEnough) {
  ScalingSpec s = spec("eplb");
  ScalingInput in = one_layer({100, 100, 100, 100});  // uniform: no replica helps
  in.added = {{0, 2, 0, 0}};
  in.retirable = {{0, 1, 0, 0}};  // one of the two is past the cooldown
  const auto actions = decide_scaling(s, in);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ScalingAction::Kind::retire);
  EXPECT_EQ(actions[0].expert, 1);
}

}  // namespace
}  // namespace moeflow
