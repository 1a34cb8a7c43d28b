// The [scaling] table: defaults, every key read, and each kind of mistake reported at its place.
#include <gtest/gtest.h>

#include "tests/graph/graph_test_util.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::parse_errors;

const std::string kHead = "[model]\npath = \"m\"\n[scaling]\n";  // keys from line 4

TEST(GraphScaling, DefaultsWhenAbsent) {
  const GraphSpec g = parse_graph("[model]\npath = \"m\"\n", "g.toml");
  EXPECT_FALSE(g.scaling.enabled);
  EXPECT_EQ(g.scaling.policy, "threshold");
  EXPECT_EQ(g.scaling.max_replicas, 4);
}

TEST(GraphScaling, ReadsEveryKey) {
  const GraphSpec g = parse_graph(kHead +
                                      "enabled = true\npolicy = \"eplb\"\nhot_load = 2\n"
                                      "cold_load = 0.25\nmax_replicas = 3\nmemory_mb = 512\n"
                                      "node_memory_mb = 128\nwindow_ms = 1000\ncooldown_ms = 0\n",
                                  "g.toml");
  EXPECT_TRUE(g.scaling.enabled);
  EXPECT_EQ(g.scaling.policy, "eplb");
  EXPECT_DOUBLE_EQ(g.scaling.hot_load, 2.0);
  EXPECT_DOUBLE_EQ(g.scaling.cold_load, 0.25);
  EXPECT_EQ(g.scaling.max_replicas, 3);
  EXPECT_EQ(g.scaling.memory_mb, 512);
  EXPECT_EQ(g.scaling.node_memory_mb, 128);
  EXPECT_EQ(g.scaling.window_ms, 1000);
  EXPECT_EQ(g.scaling.cooldown_ms, 0);
}

TEST(GraphScaling, MistakesAreReportedWhereTheyAre) {
  EXPECT_TRUE(has_error(parse_errors(kHead + "policy = \"greedy\"\n"), 4, 10, "not known"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "hot_load = 0.9\n"), 4, 12, "(1, 1000)"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "cold_load = 1\n"), 4, 13, "(0, 1)"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "max_replicas = 0\n"), 4, 16, "outside 1-1024"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "window_ms = 5\n"), 4, 13, "outside 10-"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "enabled = \"yes\"\n"), 4, 11, "enabled"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "hot_lod = 2\n"), 4, 1, "hot_lod"));
}

}  // namespace
}  // namespace moeflow
