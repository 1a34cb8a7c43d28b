// The metrics settings of a graph: [metrics] window_tokens, per_expert and the collapse rule's
// fractions, and an expert node's metrics_port (checked for range, for the router node, and for
// clashes with the other ports on its host).
#include <gtest/gtest.h>

#include "tests/graph/graph_test_util.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::has_hint;
using test_support::parse_errors;

// A router node and an expert node with a metrics endpoint; line numbers in the comments.
const std::string kTwoNodes =
    "[model]\n"              // 1
    "path = \"m\"\n"         // 2
    "[nodes.router]\n"       // 3
    "host = \"10.0.0.1\"\n"  // 4
    "control_port = 5550\n"  // 5
    "data_port = 5551\n"     // 6
    "router = true\n"        // 7
    "[nodes.e]\n"            // 8
    "host = \"10.0.0.2\"\n"  // 9
    "control_port = 5550\n"  // 10
    "data_port = 5551\n"     // 11
    "metrics_port = 9101\n"  // 12
    "[shards.a]\n"           // 13
    "node = \"e\"\n"         // 14
    "experts = \"all\"\n";   // 15

const std::string kShort = "[model]\npath = \"m\"\n[metrics]\n";  // keys from line 4

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(GraphMetrics, Defaults) {
  const GraphSpec g = parse_graph("[model]\npath = \"m\"\n", "g.toml");
  EXPECT_EQ(g.metrics.window_tokens, 4096);
  EXPECT_TRUE(g.metrics.per_expert);
  EXPECT_DOUBLE_EQ(g.metrics.collapse_effective_fraction, 0.25);
  EXPECT_DOUBLE_EQ(g.metrics.collapse_dead_share, 0.5);
  EXPECT_EQ(g.nodes[0].metrics_port, 0);
}

TEST(GraphMetrics, ReadsEverySetting) {
  const GraphSpec g =
      parse_graph(kTwoNodes +
                      "[metrics]\nport = 9200\nwindow_tokens = 16\nper_expert = false\n"
                      "collapse_effective_fraction = 0.1\ncollapse_dead_share = 1\n",
                  "g.toml");
  EXPECT_EQ(g.metrics.port, 9200);
  EXPECT_EQ(g.metrics.window_tokens, 16);
  EXPECT_FALSE(g.metrics.per_expert);
  EXPECT_DOUBLE_EQ(g.metrics.collapse_effective_fraction, 0.1);
  EXPECT_DOUBLE_EQ(g.metrics.collapse_dead_share, 1.0);  // an integer 1 is a fraction too
  const NodeSpec* e = g.find_node("e");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->metrics_port, 9101);
  EXPECT_EQ(e->metrics_port_where.line, 12);
  EXPECT_EQ(e->metrics_port_where.column, 16);
  EXPECT_EQ(g.router_node().metrics_port, 0);
}

TEST(GraphMetrics, WindowTokensIsAnIntegerOfAtLeast16) {
  auto ds = parse_errors(kShort + "window_tokens = 8\n");
  EXPECT_TRUE(has_error(ds, 4, 17, "window_tokens 8 in [metrics] is outside 16-1073741824"));
  EXPECT_TRUE(has_hint(ds, "the default is 4096"));
  ds = parse_errors(kShort + "window_tokens = \"4096\"\n");
  EXPECT_TRUE(has_error(ds, 4, 17, "window_tokens in [metrics] must be an integer, not a string"));
  EXPECT_TRUE(has_hint(ds, "write window_tokens = 4096, without quotes"));
  EXPECT_TRUE(has_error(parse_errors(kShort + "window_tokens = 1e4\n"), 4, 17,
                        "must be an integer, not a float"));
}

TEST(GraphMetrics, PerExpertIsABoolean) {
  const auto ds = parse_errors(kShort + "per_expert = \"false\"\n");
  EXPECT_TRUE(has_error(ds, 4, 14, "per_expert in [metrics] must be a boolean, not a string"));
  EXPECT_TRUE(has_hint(ds, "write per_expert = true or false, without quotes"));
}

TEST(GraphMetrics, CollapseFractionsAreInZeroToOne) {
  for (const char* key : {"collapse_effective_fraction", "collapse_dead_share"}) {
    const std::string k = key;
    const int col = static_cast<int>(k.size()) + 4;
    EXPECT_TRUE(has_error(parse_errors(kShort + k + " = 0\n"), 4, col,
                          k + " 0 in [metrics] is outside (0, 1]"));
    EXPECT_TRUE(has_error(parse_errors(kShort + k + " = 1.5\n"), 4, col,
                          k + " 1.5 in [metrics] is outside (0, 1]"));
    EXPECT_TRUE(has_error(parse_errors(kShort + k + " = -0.25\n"), 4, col, "outside (0, 1]"));
    EXPECT_TRUE(has_error(parse_errors(kShort + k + " = nan\n"), 4, col, "outside (0, 1]"));
    const auto ds = parse_errors(kShort + k + " = \"0.25\"\n");
    EXPECT_TRUE(has_error(ds, 4, col, k + " in [metrics] must be a number, not a string"));
    EXPECT_TRUE(has_hint(ds, "without quotes"));
    EXPECT_TRUE(parse_errors(kShort + k + " = 1.0\n").empty());
  }
}

TEST(GraphMetrics, UnknownKeySuggestsOne) {
  const auto ds = parse_errors(kShort + "window_token = 4096\n");
  EXPECT_TRUE(has_error(ds, 4, 1, "unknown key \"window_token\" in [metrics]"));
  EXPECT_TRUE(has_hint(ds, "did you mean \"window_tokens\"?"));
  // [api] does not take the metrics settings.
  EXPECT_TRUE(has_error(parse_errors("[model]\npath = \"m\"\n[api]\nper_expert = true\n"), 4, 1,
                        "unknown key \"per_expert\" in [api]"));
}

TEST(GraphMetrics, MetricsPortRangeAndType) {
  EXPECT_TRUE(has_error(parse_errors(replaced(kTwoNodes, "9101", "70000")), 12, 16,
                        "metrics_port 70000 in [nodes.e] is outside 1-65535"));
  const auto ds = parse_errors(replaced(kTwoNodes, "9101", "\"9101\""));
  EXPECT_TRUE(has_error(ds, 12, 16, "metrics_port in [nodes.e] must be an integer, not a string"));
  EXPECT_TRUE(has_hint(ds, "write metrics_port = 9101, without quotes"));
}

TEST(GraphMetrics, RouterNodeUsesTheMetricsTable) {
  const auto ds =
      parse_errors(replaced(kTwoNodes, "router = true\n", "router = true\nmetrics_port = 9300\n"));
  EXPECT_TRUE(has_error(ds, 8, 16,
                        "metrics_port in [nodes.router] is not used: the router node serves "
                        "/metrics on the [metrics] host and port"));
  EXPECT_TRUE(has_hint(ds, "set port = 9300 in [metrics]"));
  // Also when router = true comes after metrics_port.
  EXPECT_TRUE(has_error(
      parse_errors(replaced(kTwoNodes, "router = true\n", "metrics_port = 9300\nrouter = true\n")),
      7, 16, "metrics_port in [nodes.router] is not used"));
}

TEST(GraphMetrics, MetricsPortClashesOnItsHost) {
  // With another port of the same node.
  auto ds = parse_errors(replaced(kTwoNodes, "metrics_port = 9101", "metrics_port = 5551"));
  EXPECT_TRUE(has_error(ds, 12, 16,
                        "10.0.0.2:5551 is used twice: metrics_port of node \"e\" and data_port of "
                        "node \"e\" (line 11)"));
  // With the router's [metrics] port when both nodes share a host.
  ds = parse_errors(replaced(replaced(kTwoNodes, "10.0.0.2", "10.0.0.1"),
                             "control_port = 5550\n"
                             "data_port = 5551\n"
                             "metrics_port = 9101",
                             "control_port = 5560\ndata_port = 5561\nmetrics_port = 9100"));
  EXPECT_TRUE(has_error(ds, 12, 16,
                        "10.0.0.1:9100 is used twice: metrics_port of node \"e\" and the "
                        "[metrics] port (the default)"));
  // Two expert nodes on one host with one metrics port.
  ds = parse_errors(kTwoNodes +
                    "[nodes.f]\nhost = \"10.0.0.2\"\ncontrol_port = 5560\ndata_port = 5561\n"
                    "metrics_port = 9101\n");
  EXPECT_TRUE(has_error(ds, 20, 16, "10.0.0.2:9101 is used twice: metrics_port of node \"f\""));
  // The same metrics port on another host is fine.
  EXPECT_TRUE(parse_errors(kTwoNodes +
                           "[nodes.f]\nhost = \"10.0.0.3\"\ncontrol_port = 5560\ndata_port = 5561\n"
                           "metrics_port = 9101\n")
                  .empty());
}

TEST(GraphMetrics, SettingsChangeTheHash) {
  const uint64_t h = graph_hash(parse_graph(kTwoNodes, "g.toml"));
  const auto hash_of = [](const std::string& text) {
    return graph_hash(parse_graph(text, "g.toml"));
  };
  EXPECT_NE(h, hash_of(replaced(kTwoNodes, "9101", "9102")));
  EXPECT_NE(h, hash_of(replaced(kTwoNodes, "metrics_port = 9101\n", "")));
  EXPECT_NE(h, hash_of(kTwoNodes + "[metrics]\nwindow_tokens = 1024\n"));
  EXPECT_NE(h, hash_of(kTwoNodes + "[metrics]\nper_expert = false\n"));
  EXPECT_NE(h, hash_of(kTwoNodes + "[metrics]\ncollapse_effective_fraction = 0.3\n"));
  EXPECT_NE(h, hash_of(kTwoNodes + "[metrics]\ncollapse_dead_share = 0.75\n"));
  // The defaults spelt out are the same graph.
  EXPECT_EQ(
      h, hash_of(kTwoNodes + "[metrics]\nwindow_tokens = 4_096\nper_expert = true\n"
                             "collapse_effective_fraction = 0.25\ncollapse_dead_share = 5e-1\n"));
}

}  // namespace
}  // namespace moeflow
