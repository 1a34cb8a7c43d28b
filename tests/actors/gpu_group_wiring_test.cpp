// The NCCL group wired into the nodes (docs/nccl.md). Everywhere: a CPU-only graph makes no
// group and exports no moeflow_gpu_group_* series (the CPU path is as before). Two GPUs only
// (skip: "needs 2 CUDA devices (this machine has N)"): the router node holding shards on cuda:0
// and cuda:1 forms a 2-rank group by itself, and a router node on cuda:0 with an expert node
// (a `moeflow serve` child process) on cuda:1 form one over the control sockets; greedy tokens
// stay the reference's, since batches still move over ZeroMQ.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/actor_system_setup.h"
#include "actors/router_node.h"
#include "core/child_process.h"
#include "kernels/cuda/device.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"
#include "tests/support/temp_dir.h"
#include "transport/endpoint.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;
using transport::GpuGroupState;

#define REQUIRE_TWO_GPUS()                                                                      \
  do {                                                                                          \
    const int count_ = kernels::cuda::device_count().count;                                     \
    if (count_ < 2) GTEST_SKIP() << "needs 2 CUDA devices (this machine has " << count_ << ")"; \
  } while (0)

// Mixtral golden (8 experts), shard a 0-3 on `a_device`, b 4-7 on `b_device`, one node.
GraphSpec one_node(const std::string& a_device, const std::string& b_device) {
  return parse_graph("[model]\npath = \"" + test_support::golden_dir("mixtral").string() +
                         "\"\ndtype = \"bf16\"\n\n[shards.a]\nexperts = \"0-3\"\ndevice = \"" +
                         a_device + "\"\n\n[shards.b]\nexperts = \"4-7\"\ndevice = \"" + b_device +
                         "\"\n",
                     "graph.toml");
}

// Waits (up to `timeout`) until the group is neither none nor forming.
GpuGroupState settled(const RouterNode& node, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  GpuGroupState s = node.gpu_group->status().state;
  while ((s == GpuGroupState::forming || s == GpuGroupState::none) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    s = node.gpu_group->status().state;
  }
  return s;
}

void expect_reference_tokens(caf::actor_system& system, RouterNode& node) {
  const auto golden = test_support::load_golden("mixtral");
  const auto outcomes = test_support::run_requests(
      system, node.pipeline.scheduler,
      test_support::greedy_requests(golden.prompts, golden.decode_steps + 1), 60s);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].error, "") << i;
    EXPECT_EQ(outcomes[i].result.tokens, golden.greedy[i]) << i;
  }
}

TEST(GpuGroupWiring, ACpuOnlyGraphMakesNoGroup) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, one_node("cpu", "cpu"), 10s);
  EXPECT_EQ(node->gpu_group, nullptr);
  EXPECT_EQ(test_support::metric_series(node->registry->exposition(), "moeflow_gpu_group_state"),
            0);
}

TEST(GpuGroupWiring, TheRouterNodesTwoGpusFormAGroupByThemselves) {
  REQUIRE_TWO_GPUS();
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, one_node("cuda:0", "cuda:1"), 10s);
  ASSERT_NE(node->gpu_group, nullptr);
  ASSERT_EQ(settled(*node, 90s), GpuGroupState::formed) << node->gpu_group->failure();
  EXPECT_TRUE(node->gpu_group->gpu_data_plane());
  const std::string text = node->registry->exposition();
  EXPECT_EQ(test_support::metric_sample(text, "moeflow_gpu_group_members"), 2.0);
  EXPECT_EQ(test_support::metric_sample(text, "moeflow_gpu_group_state{state=\"formed\"}"), 1.0);
  expect_reference_tokens(system, *node);
}

TEST(GpuGroupWiring, ARouterNodeAndAnExpertNodeFormAGroupOverTheControlSockets) {
  REQUIRE_TWO_GPUS();
  // From a bundle (scripts/gpu_check.sh) the build machine's binary path may not exist here.
  if (!std::filesystem::exists(MOEFLOW_BINARY))
    GTEST_SKIP() << "no moeflow binary at " << MOEFLOW_BINARY << " to run the expert node";
  test_support::TempDir temp;
  const int ports[] = {transport::free_loopback_port(), transport::free_loopback_port(),
                       transport::free_loopback_port(), transport::free_loopback_port()};
  const std::string file = (temp.path() / "graph.toml").string();
  {
    std::ofstream out(file);
    out << "[model]\npath = \"" << test_support::golden_dir("mixtral").string()
        << "\"\ndtype = \"bf16\"\n\n[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 2000\n\n"
        << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << ports[0]
        << "\ndata_port = " << ports[1] << "\nrouter = true\n\n"
        << "[nodes.experts-a]\nhost = \"127.0.0.1\"\ncontrol_port = " << ports[2]
        << "\ndata_port = " << ports[3] << "\n\n"
        << "[shards.r]\nnode = \"router\"\nexperts = \"0-3\"\ndevice = \"cuda:0\"\n\n"
        << "[shards.a]\nnode = \"experts-a\"\nexperts = \"4-7\"\ndevice = \"cuda:1\"\n";
  }
  ChildProcess expert_node(MOEFLOW_BINARY, {"serve", "--graph", file, "--node", "experts-a"},
                           temp.path() / "experts-a.log");
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), 60s);
  ASSERT_NE(node->gpu_group, nullptr);
  const GpuGroupState state = settled(*node, 90s);
  EXPECT_EQ(state, GpuGroupState::formed) << node->gpu_group->failure() << "\nexperts-a log:\n"
                                          << expert_node.log();
  EXPECT_EQ(node->gpu_group->status().members, 2);
  expect_reference_tokens(system, *node);
}

}  // namespace
}  // namespace moeflow
