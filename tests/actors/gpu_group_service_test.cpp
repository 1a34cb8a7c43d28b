// The router node's NCCL group service with its real parts below the sockets (controller, the
// router node's participant, NcclRankFactory, metrics) and a recording `send`: a remote member
// is sent the group, the router node's own rank forms here, on its ticker, and a device that
// does not exist fails it with the communicator's reason, visible in the metrics. Runs
// everywhere: the router node's rank is on cuda:9999, which no machine has.
#include "actors/gpu_group_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/metrics_text.h"
#include "tests/transport/gpu_group_test_util.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;
using transport::GpuGroupState;

GraphSpec router_and_one_expert_node() {
  using transport::test_util::graph_node;
  using transport::test_util::graph_shard;
  return parse_graph("[model]\npath = \"m\"\n" + graph_node("router", 7000, true) +
                         graph_node("experts-a", 7010) +
                         graph_shard("r0", "router", "0-3", "cuda:9999") +
                         graph_shard("a0", "experts-a", "4-7", "cuda:0"),
                     "service.toml");
}

struct GpuGroupServiceTest : ::testing::Test {
  transport::test_util::CountingIds ids;
  metrics::Registry registry;
  std::mutex sent_mutex;
  std::vector<std::string> sent;    // "experts-a g1"
  std::vector<std::string> logged;  // guarded by sent_mutex

  std::unique_ptr<GpuGroupService> make_service() {
    GpuGroupServiceOptions options;
    options.node = "router";
    options.tick = 10ms;
    options.make_id = ids.fn();
    options.generations_from_clock = false;
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(sent_mutex);
      logged.push_back(line);
    };
    return std::make_unique<GpuGroupService>(
        options,
        [this](const std::string& node, const transport::GpuGroup& g) {
          std::lock_guard<std::mutex> lock(sent_mutex);
          sent.push_back(node + " g" + std::to_string(g.generation));
        },
        &registry);
  }
  double sample(const std::string& series) {
    return test_support::metric_sample(registry.exposition(), series);
  }
};

// Waits (up to 20 s) until the service leaves `state`.
GpuGroupState state_after(const GpuGroupService& service, GpuGroupState state) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (service.status().state == state && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  return service.status().state;
}

TEST_F(GpuGroupServiceTest, GenerationsCountFromTheWallClockByDefault) {
  GpuGroupServiceOptions options;
  options.node = "router";
  options.make_id = ids.fn();
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  GpuGroupService service(
      options, [](const std::string&, const transport::GpuGroup&) {}, nullptr);
  service.apply_graph(router_and_one_expert_node());
  EXPECT_GE(service.status().generation, static_cast<uint64_t>(before));
}

TEST_F(GpuGroupServiceTest, MetricsExistBeforeAnyGroup) {
  auto service = make_service();
  EXPECT_EQ(sample("moeflow_gpu_group_generation"), 0.0);
  EXPECT_EQ(sample("moeflow_gpu_group_members"), 0.0);
  EXPECT_EQ(sample("moeflow_gpu_group_state{state=\"none\"}"), 1.0);
  for (const char* s : {"forming", "formed", "failed"})
    EXPECT_EQ(sample("moeflow_gpu_group_state{state=\"" + std::string(s) + "\"}"), 0.0) << s;
}

TEST_F(GpuGroupServiceTest, TheRemoteMemberIsSentTheGroupAndALocalRankThatCannotFormFailsIt) {
  auto service = make_service();
  service->apply_graph(router_and_one_expert_node());
  {
    std::lock_guard<std::mutex> lock(sent_mutex);
    EXPECT_EQ(sent, (std::vector<std::string>{"experts-a g1"}));  // not to itself
  }
  // The router node's rank fails on its forming thread; the ticker hands the result over.
  ASSERT_EQ(state_after(*service, GpuGroupState::forming), GpuGroupState::failed);
  const std::string why = service->failure();
  EXPECT_NE(why.find("router cuda:9999 (rank 0): NCCL rank 0 of 2 on cuda:9999"), std::string::npos)
      << why;
  EXPECT_FALSE(service->gpu_data_plane());
  {
    // The operator reads why in the router node's log, not only in the metrics.
    std::lock_guard<std::mutex> lock(sent_mutex);
    bool named = false;
    for (const std::string& line : logged)
      named |= line.find("failed: router cuda:9999 (rank 0)") != std::string::npos;
    EXPECT_TRUE(named) << "no log line names the device that failed (" << logged.size()
                       << " lines)";
  }
  EXPECT_EQ(sample("moeflow_gpu_group_generation"), 1.0);
  EXPECT_EQ(sample("moeflow_gpu_group_members"), 2.0);
  EXPECT_EQ(sample("moeflow_gpu_group_state{state=\"failed\"}"), 1.0);
  EXPECT_EQ(sample("moeflow_gpu_group_state{state=\"forming\"}"), 0.0);

  // The remote node's late answer changes nothing; losing it leaves one member: no group.
  service->answer({1, "experts-a", {{0, ""}}});
  EXPECT_EQ(service->status().state, GpuGroupState::failed);
  service->node_down("experts-a");
  EXPECT_EQ(service->status().state, GpuGroupState::none);
  EXPECT_EQ(sample("moeflow_gpu_group_state{state=\"none\"}"), 1.0);
  EXPECT_EQ(sample("moeflow_gpu_group_members"), 0.0);
  // Back: a new generation, sent again.
  service->node_up("experts-a");
  EXPECT_EQ(service->status().generation, 2u);
  std::lock_guard<std::mutex> lock(sent_mutex);
  EXPECT_EQ(sent.back(), "experts-a g2");
}

}  // namespace
}  // namespace moeflow
