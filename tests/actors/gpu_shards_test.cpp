// Expert shards with device = "cuda:N" in a served graph: they run the GPU expert stage
// (model/gpu_expert_stage.h) inside the same shard actor as CPU shards, CPU and GPU shards mix in
// one graph, and an edit moves a shard onto a GPU live. Without a CUDA device those skip; an edit
// naming a GPU this node lacks is refused while the old graph keeps serving, everywhere.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "actors/actor_system_setup.h"
#include "actors/added_replicas.h"
#include "actors/router_node.h"
#include "core/error.h"
#include "graph/replica_device.h"
#include "kernels/cuda/device.h"
#include "model/model_config.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

// Mixtral golden (8 experts): shard a holds 0-3 on `a_device`, b holds 4-7 on `b_device`. Both
// load bf16 weights, so the CPU and GPU shards multiply the same numbers.
GraphSpec two_shards(const std::string& a_device, const std::string& b_device) {
  return parse_graph("[model]\npath = \"" + test_support::golden_dir("mixtral").string() +
                         "\"\ndtype = \"bf16\"\n\n[shards.a]\nexperts = \"0-3\"\ndevice = \"" +
                         a_device + "\"\n\n[shards.b]\nexperts = \"4-7\"\ndevice = \"" + b_device +
                         "\"\n",
                     "graph.toml");
}

TEST(GpuShardEdits, AnEditNamingAMissingGpuIsRefusedAndTheOldGraphServes) {
  const auto golden = test_support::load_golden("mixtral");
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, two_shards("cpu", "cpu"), 10s);
  const auto requests = test_support::greedy_requests(golden.prompts, golden.decode_steps + 1);
  const auto before = test_support::run_requests(system, node->pipeline.scheduler, requests, 60s);
  const int missing = kernels::cuda::device_count().count;  // one past the last GPU
  const std::string device = "cuda:" + std::to_string(missing);
  try {
    node->reload(two_shards("cpu", device), 5s);
    FAIL() << device << " accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("shard b: device " + device), std::string::npos) << what;
  }
  EXPECT_EQ(node->graph.find_shard("b")->device, "cpu");
  const auto after = test_support::run_requests(system, node->pipeline.scheduler, requests, 60s);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].error, "");
    EXPECT_EQ(after[i].result.tokens, before[i].result.tokens) << i;
  }
}

class GpuShards : public ::testing::Test {
 protected:
  void SetUp() override {
    const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
    if (devices.count == 0) GTEST_SKIP() << "no CUDA device (" << devices.error << ")";
    golden_ = test_support::load_golden("mixtral");
  }

  std::vector<std::vector<int32_t>> greedy(RouterNode& node) {
    const auto outcomes = test_support::run_requests(
        system_, node.pipeline.scheduler,
        test_support::greedy_requests(golden_.prompts, golden_.decode_steps + 1), 60s);
    std::vector<std::vector<int32_t>> tokens;
    for (const auto& o : outcomes) {
      EXPECT_EQ(o.error, "");
      tokens.push_back(o.result.tokens);
    }
    return tokens;
  }

  static double pairs_of(const RouterNode& node, const std::string& shard) {
    return test_support::metric_sum(node.registry->exposition(), "moeflow_shard_pairs_total",
                                    {{"shard", shard}});
  }

  test_support::GoldenFixture golden_;
  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
};

// The same greedy tokens as the all-CPU graph: the GPU rounds activations to bf16 between its
// two GEMMs where the CPU keeps fp32, which moves logits by about 1e-3 relative; the golden
// prompts have no near-ties that small (if this fails on a first GPU run, compare logits before
// suspecting the wiring).
TEST_F(GpuShards, MixedCpuAndGpuShardsGiveTheAllCpuTokens) {
  std::vector<std::vector<int32_t>> cpu_tokens;
  {
    auto cpu = start_router_node(system_, two_shards("cpu", "cpu"), 10s);
    cpu_tokens = greedy(*cpu);
  }
  auto mixed = start_router_node(system_, two_shards("cpu", "cuda:0"), 10s);
  EXPECT_EQ(greedy(*mixed), cpu_tokens);
  EXPECT_GT(pairs_of(*mixed, "a"), 0);
  EXPECT_GT(pairs_of(*mixed, "b"), 0) << "the GPU shard computed no pairs";
}

TEST_F(GpuShards, AnEditMovesAShardOntoTheGpuLive) {
  auto node = start_router_node(system_, two_shards("cpu", "cpu"), 10s);
  const auto before = greedy(*node);
  const std::string summary = node->reload(two_shards("cpu", "cuda:0"), 5s);
  EXPECT_FALSE(summary.empty());
  const double b_pairs = pairs_of(*node, "b");
  EXPECT_EQ(greedy(*node), before);
  EXPECT_GT(pairs_of(*node, "b"), b_pairs) << "shard b did not serve after moving to cuda:0";
  // And back to the CPU.
  node->reload(two_shards("cpu", "cpu"), 5s);
  EXPECT_EQ(greedy(*node), before);
}

// The router stage on the GPU too ([model] router_device): requests complete with the asked-for
// tokens. Its numbers against the CPU stage, layer by layer, and its cache's bookkeeping are
// tests/model/gpu_router_stage_test.cpp's.
TEST_F(GpuShards, RouterStageOnTheGpuServes) {
  GraphSpec g = two_shards("cpu", "cuda:0");
  g.model.router_device = "cuda:0";
  auto node = start_router_node(system_, g, 10s);
  const auto tokens = greedy(*node);
  ASSERT_EQ(tokens.size(), golden_.prompts.size());
  for (const auto& t : tokens) EXPECT_EQ(t.size(), static_cast<size_t>(golden_.decode_steps + 1));
  EXPECT_GT(pairs_of(*node, "b"), 0);
  EXPECT_EQ(node->pipeline.router_model->device_name(), "cuda:0");
}

// The autoscaler's replica on a node whose shards use a GPU loads onto that GPU
// (graph/replica_device.h) and computes what the same replica on the CPU computes.
TEST_F(GpuShards, AnAddedReplicaLoadsOntoTheNodesGpu) {
  const GraphSpec cpu_graph = two_shards("cpu", "cpu"), gpu_graph = two_shards("cpu", "cuda:0");
  ASSERT_EQ(replica_device(gpu_graph, "local"), "cuda:0");
  const ModelConfig cfg = load_model_config(gpu_graph.model.path);
  int64_t layer = 0;
  while (!cfg.layer_is_moe[layer]) ++layer;
  const int32_t expert = 5;
  auto registry = std::make_shared<metrics::Registry>();
  auto on_cpu = spawn_added_replica(system_, cpu_graph, "local", cfg, registry, layer, expert);
  auto on_gpu = spawn_added_replica(system_, gpu_graph, "local", cfg, registry, layer, expert);

  // 7 rows, each choosing the replica's expert (first or second) and one it does not hold.
  auto batch = std::make_shared<TokenBatch>();
  batch->layer = layer;
  batch->hidden_size = cfg.hidden_size;
  batch->top_k = 2;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int r = 0; r < 7; ++r) {
    for (int64_t i = 0; i < cfg.hidden_size; ++i) batch->rows.push_back(normal(rng));
    batch->seq_ids.push_back(static_cast<uint64_t>(r));
    batch->positions.push_back(r);
    const bool first = r % 2 == 0;
    batch->experts.insert(batch->experts.end(), {first ? expert : 1, first ? 2 : expert});
    batch->weights.insert(batch->weights.end(), {0.75f, 0.25f});
  }
  caf::scoped_actor self{system_};
  auto run = [&](const expert_shard_actor& replica) {
    std::vector<float> rows;
    self->request(replica, std::chrono::seconds(30), run_atom::value, TokenBatchPtr(batch))
        .receive([&](ExpertOutputPtr out) { rows = out->rows; },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return rows;
  };
  const std::vector<float> want = run(on_cpu), got = run(on_gpu);
  ASSERT_EQ(got.size(), want.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << i;
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  ASSERT_GT(norm, 0);
  EXPECT_LT(std::sqrt(diff / norm), 2e-2) << "GPU replica against the CPU replica";
  caf::anon_send_exit(on_cpu, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(on_gpu, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace moeflow
