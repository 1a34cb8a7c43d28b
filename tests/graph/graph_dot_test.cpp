// graph_to_dot: clusters per node, the router and shards inside, labelled edges.
#include <gtest/gtest.h>

#include "graph/graph.h"

namespace moeflow {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(GraphDot, ClustersNodesAndEdges) {
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n"
      "[nodes.head]\nhost = \"10.0.0.1\"\ncontrol_port = 5550\ndata_port = 5551\nrouter = true\n"
      "[nodes.gpu-box]\nhost = \"10.0.0.2\"\ncontrol_port = 5550\ndata_port = 5551\n"
      "[shards.a]\nnode = \"gpu-box\"\nexperts = \"0-3,8\"\nlayers = \"0-1\"\ndevice = \"cuda:0\"\n"
      "[shards.b]\nnode = \"head\"\nexperts = \"all\"\n",
      "g.toml");
  const std::string dot = graph_to_dot(g);
  EXPECT_TRUE(contains(dot, "digraph moeflow {")) << dot;
  EXPECT_TRUE(contains(dot, "subgraph \"cluster_head\" {")) << dot;
  EXPECT_TRUE(contains(dot, "subgraph \"cluster_gpu-box\" {")) << dot;
  EXPECT_TRUE(contains(dot, "label=\"gpu-box\\n10.0.0.2 control 5550 data 5551\"")) << dot;
  EXPECT_TRUE(contains(dot, "\"router:head\" [label=\"router")) << dot;
  EXPECT_TRUE(contains(dot, "\"shard:a\" [label=\"shard a\"]")) << dot;
  EXPECT_TRUE(contains(
      dot, "\"router:head\" -> \"shard:a\" [label=\"layers 0-1\\nexperts 0-3,8\\ncuda:0\"]"))
      << dot;
  EXPECT_TRUE(contains(dot, "\"router:head\" -> \"shard:b\" [label=\"layers all\\nexperts all\"]"))
      << dot;
  // The shard sits inside its node's cluster.
  const size_t cluster = dot.find("cluster_gpu-box"), shard = dot.find("\"shard:a\" [label");
  EXPECT_LT(cluster, shard);
  EXPECT_EQ(dot.find('}', cluster), dot.find("  }\n", shard) + 2);
  EXPECT_EQ(dot.back(), '\n');
}

TEST(GraphDot, ImplicitNode) {
  const std::string dot = graph_to_dot(parse_graph("[model]\npath = \"m\"\n", "g.toml"));
  EXPECT_TRUE(contains(dot, "subgraph \"cluster_local\"")) << dot;
  EXPECT_TRUE(contains(dot, "label=\"local\\n127.0.0.1\"")) << dot;
  EXPECT_TRUE(contains(dot, "\"router:local\" -> \"shard:local\"")) << dot;
}

}  // namespace
}  // namespace moeflow
