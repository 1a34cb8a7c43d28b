// Where the autoscaler's added replicas load on a node: the GPU most of the node's shards use
// (the router stage counts on the router node), the lowest index on a tie, else the CPU.
#include "graph/replica_device.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace moeflow {
namespace {

// Node head (the router) holds one one-expert shard per entry of head_devices, on that device;
// node box likewise.
GraphSpec graph_with(const std::vector<std::string>& head_devices,
                     const std::vector<std::string>& box_devices,
                     const std::string& router_device = "cpu") {
  std::string toml = "[model]\npath = \"m\"\nrouter_device = \"" + router_device +
                     "\"\n"
                     "[nodes.head]\nhost = \"127.0.0.1\"\ncontrol_port = 7001\ndata_port = "
                     "7002\nrouter = true\n"
                     "[nodes.box]\nhost = \"127.0.0.1\"\ncontrol_port = 7003\ndata_port = 7004\n";
  int expert = 0;
  auto add = [&](const std::string& node, const std::vector<std::string>& devices) {
    for (const std::string& d : devices) {
      toml += "[shards." + node + std::to_string(expert) + "]\nnode = \"" + node +
              "\"\nexperts = \"" + std::to_string(expert) + "\"\ndevice = \"" + d + "\"\n";
      ++expert;
    }
  };
  add("head", head_devices);
  add("box", box_devices);
  return parse_graph(toml, "g.toml");
}

TEST(ReplicaDevice, ANodeWithoutGpusLoadsOnTheCpu) {
  const GraphSpec g = graph_with({"cpu"}, {"cpu", "cpu"});
  EXPECT_EQ(replica_device(g, "head"), "cpu");
  EXPECT_EQ(replica_device(g, "box"), "cpu");
}

TEST(ReplicaDevice, AnyGpuShardOnTheNodeWinsOverCpuShards) {
  const GraphSpec g = graph_with({"cpu"}, {"cpu", "cpu", "cuda:1"});
  EXPECT_EQ(replica_device(g, "box"), "cuda:1");
  EXPECT_EQ(replica_device(g, "head"), "cpu") << "another node's GPU is not this node's";
}

TEST(ReplicaDevice, TheGpuMostShardsUseAndTheLowestIndexOnATie) {
  EXPECT_EQ(replica_device(graph_with({}, {"cuda:0", "cuda:2", "cuda:2"}), "box"), "cuda:2");
  EXPECT_EQ(replica_device(graph_with({}, {"cuda:3", "cuda:1"}), "box"), "cuda:1");
}

TEST(ReplicaDevice, TheRouterStageCountsOnTheRouterNodeOnly) {
  const GraphSpec g = graph_with({"cpu"}, {"cpu"}, "cuda:0");
  EXPECT_EQ(replica_device(g, "head"), "cuda:0");
  EXPECT_EQ(replica_device(g, "box"), "cpu");
  // One shard on cuda:1 and the router stage on cuda:0 tie: the lowest index.
  EXPECT_EQ(replica_device(graph_with({"cuda:1"}, {}, "cuda:0"), "head"), "cuda:0");
  EXPECT_EQ(replica_device(graph_with({"cuda:1", "cuda:1"}, {}, "cuda:0"), "head"), "cuda:1");
}

TEST(ReplicaDevice, TheImplicitNodeOfAOneProcessGraph) {
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n[shards.a]\nexperts = \"0-3\"\n[shards.b]\nexperts = "
      "\"4-7\"\ndevice = \"cuda:0\"\n",
      "g.toml");
  EXPECT_EQ(replica_device(g, "local"), "cuda:0");
}

}  // namespace
}  // namespace moeflow
