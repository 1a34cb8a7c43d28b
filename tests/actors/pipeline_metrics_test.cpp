// The actors' metrics on a real pipeline: they count exactly the work done (tokens routed per
// layer, pairs computed per shard, steps, layer waits), return to idle values when the work is
// done, pass promtool, and leave the generated tokens unchanged.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/local_pipeline.h"
#include "actors/router_metrics.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using test_support::metric_sample;
using test_support::metric_series;
using test_support::metric_sum;

class PipelineMetrics : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineMetrics, CountTheWorkDoneAndChangeNoToken) {
  const auto golden = test_support::load_golden(GetParam());
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto registry = std::make_shared<metrics::Registry>();
  LocalPipelineOptions options;
  options.registry = registry;
  options.routing.window_tokens = 16;
  const ModelConfig model = load_model_config(golden.dir);
  const int64_t half = model.num_experts / 2;
  const LocalPipeline p = spawn_local_pipeline(system, golden.dir,
                                               {[half](int64_t, int64_t e) { return e < half; },
                                                [half](int64_t, int64_t e) { return e >= half; }},
                                               options);
  const int64_t max_tokens = golden.decode_steps + 1;
  const auto outcomes = test_support::run_requests(
      system, p.scheduler, test_support::greedy_requests(golden.prompts, max_tokens));
  int64_t rows = 0;  // tokens fed to the model: the prompt and every generated token but the last
  for (size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_EQ(outcomes[i].error, "");
    EXPECT_EQ(outcomes[i].result.tokens, golden.greedy[i]) << "prompt " << i;
    rows += static_cast<int64_t>(golden.prompts[i].size()) + max_tokens - 1;
  }
  p.routing->flush();
  const std::string text = registry->exposition();
  const std::vector<int64_t> moe = moe_layers(model);
  for (int64_t l : moe) {
    const std::string layer = std::to_string(l);
    EXPECT_EQ(metric_sum(text, "moeflow_expert_tokens_total", {{"layer", layer}}),
              static_cast<double>(rows * model.top_k))
        << "layer " << l;
    EXPECT_EQ(metric_series(text, "moeflow_expert_tokens_total"),
              static_cast<int>(moe.size() * model.num_experts));
    // A window of 16 tokens: at least one is complete, its gauges are in range.
    EXPECT_GE(metric_sample(text, "moeflow_routing_windows_total{layer=\"" + layer + "\"}"), 1.0);
    const double ratio = metric_sample(text, "moeflow_routing_fsi_ratio{layer=\"" + layer + "\"}");
    EXPECT_GE(ratio, 0.0);
    EXPECT_LE(ratio, 1.0);
  }
  EXPECT_EQ(metric_sum(text, "moeflow_shard_pairs_total"),
            static_cast<double>(rows * model.top_k * static_cast<int64_t>(moe.size())));
  EXPECT_GT(metric_sum(text, "moeflow_shard_busy_seconds_total", {{"shard", "shard0"}}), 0.0);
  EXPECT_GT(metric_sum(text, "moeflow_expert_busy_seconds_total", {{"shard", "shard1"}}), 0.0);
  const double steps = metric_sample(text, "moeflow_scheduler_steps_total");
  EXPECT_GE(steps, static_cast<double>(max_tokens));
  // Every step waits once per MoE layer.
  EXPECT_EQ(metric_sum(text, "moeflow_layer_wait_seconds_count"),
            steps * static_cast<double>(moe.size()));
  // The scheduler updates its gauges right after delivering the results: wait for that.
  std::string idle = registry->exposition();
  for (int i = 0; i < 200 && metric_sample(idle, "moeflow_kv_cache_reserved_tokens") != 0.0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    idle = registry->exposition();
  }
  EXPECT_EQ(metric_sample(idle, "moeflow_scheduler_running_sequences"), 0.0);
  EXPECT_EQ(metric_sample(idle, "moeflow_scheduler_waiting_requests"), 0.0);
  EXPECT_EQ(metric_sample(idle, "moeflow_kv_cache_reserved_tokens"), 0.0);
  EXPECT_EQ(metric_sample(text, "moeflow_routing_skipped_steps_total"), 0.0);

  if (std::system("command -v promtool > /dev/null 2>&1") == 0) {
    FILE* pipe = popen("promtool check metrics", "w");
    ASSERT_NE(pipe, nullptr);
    std::fwrite(text.data(), 1, text.size(), pipe);
    EXPECT_EQ(pclose(pipe), 0) << "promtool check metrics reported problems (printed above)";
  } else {
    std::printf("promtool not installed (Debian package prometheus): format not checked here\n");
  }
  stop_pipeline(p);
}

INSTANTIATE_TEST_SUITE_P(Families, PipelineMetrics,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moeflow
