// make_placement: which shards own each (layer, expert), dense layers empty, replicas listed.
#include <gtest/gtest.h>

#include "graph/graph.h"
#include "model/model_config.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

TEST(Placement, SplitWithReplicasAndLayerSubsets) {
  const ModelConfig model = load_model_config(test_support::golden_dir("mixtral"));  // 3 x 8
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n"
      "[shards.a]\nexperts = \"0-3\"\n"
      "[shards.b]\nexperts = \"4-7\"\n"
      "[shards.c]\nexperts = \"2,5\"\nlayers = \"1\"\n",
      "g.toml");
  const Placement p = make_placement(g, model);
  ASSERT_EQ(p.owners.size(), 3u);
  for (const auto& layer : p.owners) ASSERT_EQ(layer.size(), 8u);
  EXPECT_EQ(p.owners_of(0, 0), (std::vector<int>{0}));
  EXPECT_EQ(p.owners_of(0, 7), (std::vector<int>{1}));
  EXPECT_EQ(p.owners_of(0, 2), (std::vector<int>{0}));
  EXPECT_EQ(p.owners_of(1, 2), (std::vector<int>{0, 2}));
  EXPECT_EQ(p.owners_of(1, 5), (std::vector<int>{1, 2}));
  EXPECT_EQ(p.owners_of(2, 5), (std::vector<int>{1}));
  EXPECT_EQ(g.shards[2].name, "c");
}

TEST(Placement, DenseLayersHaveNoExperts) {
  const ModelConfig model = load_model_config(test_support::golden_dir("deepseek"));
  const GraphSpec g = parse_graph("[model]\npath = \"m\"\n", "g.toml");
  const Placement p = make_placement(g, model);
  ASSERT_EQ(p.owners.size(), 3u);
  EXPECT_TRUE(p.owners[0].empty());  // first_k_dense_replace = 1
  ASSERT_EQ(p.owners[1].size(), static_cast<size_t>(model.num_experts));
  for (int64_t e = 0; e < model.num_experts; ++e) EXPECT_EQ(p.owners_of(2, e), std::vector<int>{0});
}

TEST(Placement, IdsBeyondTheModelAreIgnored) {
  const ModelConfig model = load_model_config(test_support::golden_dir("mixtral"));
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n[shards.a]\nexperts = \"6-20\"\nlayers = \"2-9\"\n", "g.toml");
  const Placement p = make_placement(g, model);
  EXPECT_EQ(p.owners_of(2, 7), std::vector<int>{0});
  EXPECT_TRUE(p.owners_of(1, 7).empty());
}

}  // namespace
}  // namespace moeflow
