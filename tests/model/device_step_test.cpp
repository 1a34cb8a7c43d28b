// The host side of the device-resident step, which runs without a GPU: the refusals of routing
// handed between the GPU stages, the packing of the logits' rows into runs, the demand that the
// expert shard hold every expert, and the GpuEngineStep's refusal of stages on the CPU.
#include "model/device_step.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "model/expert_shard.h"
#include "model/gpu_engine_step.h"
#include "model/router_model.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

// The message of the moeflow::Error `f` throws ("" when it does not).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

ModelConfig small_config() {
  ModelConfig cfg;
  cfg.num_layers = 3;
  cfg.num_experts = 8;
  cfg.top_k = 2;
  cfg.hidden_size = 16;
  cfg.layer_is_moe = {false, true, true};
  return cfg;
}

TEST(DeviceRouting, RefusesRoutingTheModelCannotRun) {
  const ModelConfig cfg = small_config();
  const float rows = 0.0f, weights = 0.0f;
  const int32_t ids = 0;
  const DeviceRouting good{1, 4, 2, &rows, &ids, &weights};
  EXPECT_EQ(error_of([&] { check_device_routing(good, cfg, "stage"); }), "");
  EXPECT_EQ(error_of([&] {
              check_device_routing({2, 0, 0, nullptr, nullptr, nullptr}, cfg, "s");
            }),
            "")
      << "no rows: nothing to check but the layer";
  struct Case {
    DeviceRouting r;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{3, 4, 2, &rows, &ids, &weights}, "stage: routing of layer 3 of 3"},
      {{-1, 4, 2, &rows, &ids, &weights}, "stage: routing of layer -1 of 3"},
      {{1, -2, 2, &rows, &ids, &weights}, "stage: layer 1: routing of -2 rows"},
      {{1, 4, 0, &rows, &ids, &weights}, "stage: layer 1: routing of 4 rows with top-0"},
      {{1, 4, 9, &rows, &ids, &weights}, "top-9 (the model has 8 experts)"},
      {{1, 4, 2, nullptr, &ids, &weights}, "stage: layer 1: routing of 4 rows without expert rows"},
      {{1, 4, 2, &rows, nullptr, &weights}, "without expert ids"},
      {{1, 4, 2, &rows, &ids, nullptr}, "without weights"},
  };
  for (const Case& c : cases) {
    const std::string what = error_of([&] { check_device_routing(c.r, cfg, "stage"); });
    EXPECT_NE(what.find(c.says), std::string::npos) << "got: " << what;
  }
}

TEST(RowRuns, PacksConsecutiveRowsIntoOneCopy) {
  // Decode: every row wanted, in order - one run, nothing to move.
  std::vector<RowRun> runs = row_runs({0, 1, 2, 3}, 4, "logits");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(is_identity(runs, 4));
  // Prefill of sequences of 5, 1 and 9 rows: the last row of each.
  runs = row_runs({4, 5, 14}, 15, "logits");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].source, 4);
  EXPECT_EQ(runs[0].target, 0);
  EXPECT_EQ(runs[0].count, 2);
  EXPECT_EQ(runs[1].source, 14);
  EXPECT_EQ(runs[1].target, 2);
  EXPECT_EQ(runs[1].count, 1);
  EXPECT_FALSE(is_identity(runs, 15));
  // Every row but not starting at 0, or a prefix only: not the identity.
  EXPECT_FALSE(is_identity(row_runs({0, 1}, 3, "logits"), 3));
  EXPECT_FALSE(is_identity(row_runs({1, 0}, 2, "logits"), 2));
  EXPECT_EQ(row_runs({1, 0}, 2, "logits").size(), 2u);
  // A row wanted twice is copied twice.
  runs = row_runs({2, 2}, 3, "logits");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].target, 1);
  EXPECT_TRUE(row_runs({}, 0, "logits").empty());
  EXPECT_TRUE(is_identity({}, 0));
}

TEST(RowRuns, RefusesRowsOutsideTheMatrix) {
  EXPECT_NE(error_of([] {
              row_runs({0, 3}, 3, "GPU router stage: logits");
            }).find("GPU router stage: logits: row 3 (wanted as output 1) of 3 rows"),
            std::string::npos);
  EXPECT_NE(error_of([] { row_runs({-1}, 3, "logits"); }).find("row -1"), std::string::npos);
}

TEST(RequireEveryExpert, NamesTheFirstMissingExpertOfAnMoeLayer) {
  const ModelConfig cfg = small_config();
  // Layer 0 is dense: nothing is required there.
  EXPECT_EQ(error_of([&] {
              require_every_expert(
                  cfg, [](int64_t l, int64_t) { return l > 0; }, "step");
            }),
            "");
  const std::string what = error_of([&] {
    require_every_expert(
        cfg, [](int64_t l, int64_t e) { return !(l == 2 && e == 5); }, "GPU engine step on cuda:0");
  });
  EXPECT_NE(what.find("GPU engine step on cuda:0: layer 2 expert 5 is not held"), std::string::npos)
      << what;
}

TEST(GpuEngineStep, RefusesStagesOnTheCpu) {
  const auto dir = test_support::golden_dir("mixtral");
  auto router = RouterModel::load(dir, "bf16", {});
  auto experts = ExpertShard::load(dir, "bf16", {}, {});
  const std::string what = error_of([&] { GpuEngineStep step(*router, *experts); });
  // With CUDA: the router stage is on the CPU; without: the build has no CUDA.
  EXPECT_NE(what.find("GPU engine step: "), std::string::npos) << what;
#if MOEFLOW_HAVE_CUDA
  EXPECT_NE(what.find("the router stage runs on cpu"), std::string::npos) << what;
#endif
}

}  // namespace
}  // namespace moeflow
