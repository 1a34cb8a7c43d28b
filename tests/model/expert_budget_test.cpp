// The elastic expert budget: routing restricted to a resident set ranks the allowed experts
// exactly as the model's own rule does; the engine honours a smaller top-k and a resident set per
// layer (counted in StepStats), the model's own budget changes nothing, and a budget the model
// cannot honour is refused naming the layer and expert.
#include "model/expert_budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "model/engine.h"
#include "model/moe_routing.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

TEST(ExpertBudgetRouting, ResidentSetTakesBestAllowedExperts) {
  // Softmax ranks: 2 > 0 > 3 > 1 > 4.
  const std::vector<float> logits = {1.0f, -1.0f, 2.0f, 0.5f, -2.0f};
  std::vector<double> p(5);
  double total = 0.0;
  for (int e = 0; e < 5; ++e) total += p[e] = std::exp(logits[e]);
  for (auto& v : p) v /= total;
  const std::vector<uint8_t> allowed = {0, 1, 0, 1, 1};  // the two best are not resident
  std::vector<int32_t> experts(2);
  std::vector<float> weights(2);
  route_top_k(logits.data(), 1, 5, 2, false, experts.data(), weights.data(), allowed.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{3, 1}));
  EXPECT_NEAR(weights[0], p[3], 1e-6);  // unnormalised: the softmax over every expert
  EXPECT_NEAR(weights[1], p[1], 1e-6);
  route_top_k(logits.data(), 1, 5, 2, true, experts.data(), weights.data(), allowed.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{3, 1}));
  EXPECT_NEAR(weights[0], p[3] / (p[3] + p[1]), 1e-6);  // renormalised over the chosen
  EXPECT_NEAR(weights[0] + weights[1], 1.0, 1e-6);
  // Every expert allowed: the same as no mask.
  const std::vector<uint8_t> all(5, 1);
  std::vector<int32_t> masked(3), free(3);
  std::vector<float> wm(3), wf(3);
  route_top_k(logits.data(), 1, 5, 3, true, masked.data(), wm.data(), all.data());
  route_top_k(logits.data(), 1, 5, 3, true, free.data(), wf.data());
  EXPECT_EQ(masked, free);
  EXPECT_EQ(wm, wf);
}

class ExpertBudgetEngine : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = test_support::load_golden(GetParam());
    engine_ = Engine::load(golden_.dir, {"auto", false});
  }
  std::vector<float> run(const ExpertBudget& budget, StepStats* stats) {
    const auto logits = engine_->forward({{1, golden_.prompts[1]}}, true, stats, budget);
    engine_->release(1);
    return logits;
  }
  test_support::GoldenFixture golden_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(ExpertBudgetEngine, ModelsOwnBudgetChangesNothing) {
  const ModelConfig& cfg = engine_->config();
  StepStats plain;
  const auto want = run({}, &plain);
  ExpertBudget own;
  own.top_k = cfg.top_k;
  own.resident.assign(cfg.num_layers, std::vector<int32_t>(cfg.num_experts));
  for (auto& layer : own.resident) std::iota(layer.begin(), layer.end(), 0);
  StepStats stats;
  EXPECT_EQ(run(own, &stats), want);  // bit for bit
  EXPECT_EQ(stats.expert_use, plain.expert_use);
}

TEST_P(ExpertBudgetEngine, SmallerTopKAndResidentSetAreHonoured) {
  const ModelConfig& cfg = engine_->config();
  const int64_t rows = static_cast<int64_t>(golden_.prompts[1].size());
  StepStats full;
  const auto want = run({}, &full);
  EXPECT_EQ(full.expert_rows, rows * cfg.moe_layer_count() * cfg.top_k);

  ExpertBudget top1;
  top1.top_k = 1;
  StepStats one;
  const auto got = run(top1, &one);
  EXPECT_EQ(one.expert_rows, rows * cfg.moe_layer_count());
  EXPECT_LE(one.expert_bytes, full.expert_bytes);  // fewer experts touched, or all of them
  EXPECT_EQ(one.weight_bytes - one.expert_bytes, full.weight_bytes - full.expert_bytes);
  EXPECT_NE(got, want);  // a different (draft) model

  // Resident experts {5, 6} per layer: every routed pair lands there, two per row.
  ExpertBudget resident;
  resident.resident.assign(cfg.num_layers, {5, 6});
  StepStats res;
  run(resident, &res);
  EXPECT_EQ(res.expert_rows, rows * cfg.moe_layer_count() * 2);
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      const int64_t use = res.expert_use[l * cfg.num_experts + e];
      if (!cfg.layer_is_moe[l] || (e != 5 && e != 6)) {
        EXPECT_EQ(use, 0) << "layer " << l << " expert " << e;
      }
    }
  // A resident set of one expert caps top-k at one in that layer.
  resident.resident.assign(cfg.num_layers, {3});
  run(resident, &res);
  EXPECT_EQ(res.expert_rows, rows * cfg.moe_layer_count());
  // The experts the drafts use most, as a resident set.
  const auto most = most_used_experts(full.expert_use, cfg, 2);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    EXPECT_EQ(most[l].size(), cfg.layer_is_moe[l] ? 2u : 0u);
    if (!cfg.layer_is_moe[l]) continue;
    const int64_t* use = full.expert_use.data() + l * cfg.num_experts;
    const int64_t kept_min = std::min(use[most[l][0]], use[most[l][1]]);
    for (int64_t e = 0; e < cfg.num_experts; ++e)
      if (e != most[l][0] && e != most[l][1]) {
        EXPECT_LE(use[e], kept_min);
      }
  }
}

TEST_P(ExpertBudgetEngine, RefusesBudgetsTheModelCannotHonour) {
  const ModelConfig& cfg = engine_->config();
  auto refused = [&](const ExpertBudget& b, const std::string& needle) {
    try {
      run(b, nullptr);
      ADD_FAILURE() << "accepted a bad budget (" << needle << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ExpertBudget b;
  b.top_k = cfg.num_experts + 1;
  refused(b, "top_k 9");
  b = {};
  b.resident.assign(cfg.num_layers - 1, {0});
  refused(b, "names 2 layers");
  b.resident.assign(cfg.num_layers, {0, 1});
  const int64_t moe = cfg.layer_is_moe[0] ? 0 : 1;
  b.resident[moe] = {0, 8};
  refused(b, "layer " + std::to_string(moe) + ": resident expert 8 is outside");
  b.resident[moe] = {1, 1};
  refused(b, "listed twice");
  b.resident[moe] = {};
  refused(b, "layer " + std::to_string(moe) + " has no resident experts");
  EXPECT_THROW(most_used_experts({1, 2, 3}, cfg, 1), Error);
}

INSTANTIATE_TEST_SUITE_P(Families, ExpertBudgetEngine,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moeflow
