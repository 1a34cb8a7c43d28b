// The NCCL group plan of a graph: which (node, GPU) pairs are members, in which rank order, and
// how the group re-forms without a lost node. Pure: runs everywhere.
#include "transport/gpu_group_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "graph/graph.h"

namespace moeflow::transport {
namespace {

std::string node(const std::string& name, int port, bool router = false) {
  return "[nodes." + name + "]\nhost = \"127.0.0.1\"\ncontrol_port = " + std::to_string(port) +
         "\ndata_port = " + std::to_string(port + 1) + (router ? "\nrouter = true\n" : "\n");
}

std::string shard(const std::string& name, const std::string& on, const std::string& experts,
                  const std::string& device) {
  return "[shards." + name + "]\nnode = \"" + on + "\"\nexperts = \"" + experts +
         "\"\ndevice = \"" + device + "\"\n";
}

// Router "zeta" (named last, so name order alone would not put it first) with cuda:1 and a CPU
// shard; "alpha" with cuda:2 and cuda:0 (two shards on cuda:2); "beta" CPU only.
GraphSpec mixed_graph() {
  const std::string text = "[model]\npath = \"m\"\n" + node("zeta", 7000, true) +
                           node("alpha", 7010) + node("beta", 7020) +
                           shard("a0", "alpha", "0-1", "cuda:2") +
                           shard("a1", "alpha", "2-3", "cuda:0") +
                           shard("a2", "alpha", "4", "cuda:2") + shard("b0", "beta", "5", "cpu") +
                           shard("z0", "zeta", "6", "cuda:1") + shard("z1", "zeta", "7", "cpu");
  return parse_graph(text, "g.toml");
}

TEST(GpuGroupPlan, RouterGpuFirstThenNodesInOrderDevicesAscendingEachOnce) {
  const GpuGroupPlan plan = plan_gpu_group(mixed_graph());
  EXPECT_EQ(plan.generation, 1u);
  ASSERT_EQ(plan.nranks(), 3);
  EXPECT_EQ(plan.members[0], (GpuGroupMember{"zeta", 1}));
  EXPECT_EQ(plan.members[1], (GpuGroupMember{"alpha", 0}));
  EXPECT_EQ(plan.members[2], (GpuGroupMember{"alpha", 2}));
  EXPECT_TRUE(plan.needs_communicator());
  EXPECT_EQ(plan.rank_of("alpha", 2), 2);
  EXPECT_EQ(plan.rank_of("alpha", 1), -1);
  EXPECT_EQ(plan.rank_of("beta", 0), -1);
}

TEST(GpuGroupPlan, RouterWithoutGpuLeavesRankZeroToTheFirstGpuNode) {
  const std::string text = "[model]\npath = \"m\"\n" + node("head", 7000, true) +
                           node("box", 7010) + shard("c", "head", "0-3", "cpu") +
                           shard("g0", "box", "4-5", "cuda:0") +
                           shard("g1", "box", "6-7", "cuda:1");
  const GpuGroupPlan plan = plan_gpu_group(parse_graph(text, "g.toml"), 4);
  EXPECT_EQ(plan.generation, 4u);
  ASSERT_EQ(plan.nranks(), 2);
  EXPECT_EQ(plan.members[0], (GpuGroupMember{"box", 0}));
  EXPECT_EQ(plan.members[1], (GpuGroupMember{"box", 1}));
}

TEST(GpuGroupPlan, FewerThanTwoGpusNeedNoCommunicator) {
  const std::string cpu_only =
      "[model]\npath = \"m\"\n" + node("head", 7000, true) + shard("c", "head", "0-7", "cpu");
  const GpuGroupPlan none = plan_gpu_group(parse_graph(cpu_only, "g.toml"));
  EXPECT_EQ(none.nranks(), 0);
  EXPECT_FALSE(none.needs_communicator());

  // Two shards on one GPU are one member.
  const std::string one_gpu = "[model]\npath = \"m\"\n" + node("head", 7000, true) +
                              shard("g0", "head", "0-3", "cuda:0") +
                              shard("g1", "head", "4-7", "cuda:0");
  const GpuGroupPlan one = plan_gpu_group(parse_graph(one_gpu, "g.toml"));
  ASSERT_EQ(one.nranks(), 1);
  EXPECT_FALSE(one.needs_communicator());
}

TEST(GpuGroupPlan, ImplicitNodeGraph) {
  const std::string text = "[model]\npath = \"m\"\n" + shard("g0", "local", "0-3", "cuda:0") +
                           shard("g1", "local", "4-7", "cuda:1");
  const GraphSpec g = parse_graph(text, "g.toml");
  ASSERT_TRUE(g.implicit_node);
  const GpuGroupPlan plan = plan_gpu_group(g);
  ASSERT_EQ(plan.nranks(), 2);
  EXPECT_EQ(plan.members[0], (GpuGroupMember{std::string(kImplicitNodeName), 0}));
}

TEST(GpuGroupPlan, LosingANodeDropsItsRanksKeepsTheOrderAndBumpsTheGeneration) {
  const GraphSpec g = mixed_graph();
  const GpuGroupPlan before = plan_gpu_group(g, 3);
  const GpuGroupPlan after = plan_without_node(before, "alpha");
  EXPECT_EQ(after.generation, 4u);
  ASSERT_EQ(after.nranks(), 1);
  EXPECT_EQ(after.members[0], (GpuGroupMember{"zeta", 1}));
  EXPECT_FALSE(after.needs_communicator());

  // The same members as the plan of the graph without that node's shards.
  GraphSpec without = g;
  std::erase_if(without.shards, [](const ShardSpec& s) { return s.node == "alpha"; });
  EXPECT_EQ(after.members, plan_gpu_group(without).members);

  // A node without GPUs: same members, next generation (the old communicator is re-formed).
  const GpuGroupPlan same = plan_without_node(before, "beta");
  EXPECT_EQ(same.members, before.members);
  EXPECT_EQ(same.generation, 4u);
}

TEST(GpuGroupPlan, RepeatedLossesCompose) {
  const std::string text = "[model]\npath = \"m\"\n" + node("a", 7000, true) + node("b", 7010) +
                           node("c", 7020) + shard("s0", "a", "0-1", "cuda:0") +
                           shard("s1", "b", "2-3", "cuda:0") + shard("s2", "c", "4-5", "cuda:0") +
                           shard("s3", "c", "6-7", "cuda:1");
  const GpuGroupPlan p1 = plan_gpu_group(parse_graph(text, "g.toml"));
  ASSERT_EQ(p1.nranks(), 4);
  const GpuGroupPlan p3 = plan_without_node(plan_without_node(p1, "b"), "a");
  EXPECT_EQ(p3.generation, 3u);
  ASSERT_EQ(p3.nranks(), 2);
  EXPECT_EQ(p3.rank_of("c", 0), 0);
  EXPECT_EQ(p3.rank_of("c", 1), 1);
}

TEST(GpuGroupPlan, WithUniqueIdMakesTheAnnouncement) {
  const GpuGroupPlan plan = plan_gpu_group(mixed_graph(), 2);
  NcclUniqueIdBytes id{};
  id[5] = 9;
  const GpuGroup g = plan.with_unique_id(id);
  EXPECT_EQ(g.generation, 2u);
  EXPECT_EQ(g.unique_id, id);
  EXPECT_EQ(g.members, plan.members);
  EXPECT_THROW(plan_gpu_group(mixed_graph(), 0), Error);
  EXPECT_EQ(g.nodes(), (std::vector<std::string>{"zeta", "alpha"}));
}

TEST(GpuGroupPlan, ANodeWithMoreDevicesThanOneAnswerCarriesIsRefused) {
  std::string text = "[model]\npath = \"m\"\n" + node("box", 7000, true);
  for (uint32_t d = 0; d <= kMaxGpuGroupNodeDevices; ++d)
    text += shard("s" + std::to_string(d), "box", std::to_string(d), "cuda:" + std::to_string(d));
  try {
    plan_gpu_group(parse_graph(text, "g.toml"));
    ADD_FAILURE() << "a node with 65 GPUs was planned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node box has 65 GPU devices, more than the 64"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace moeflow::transport
