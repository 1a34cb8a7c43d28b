// metrics_targets / prometheus_targets_json: which endpoints a graph lists for Prometheus, and the
// file_sd JSON they are written as.
#include "graph/prometheus_targets.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace moeflow {
namespace {

const std::string kGraph =
    "[model]\npath = \"m\"\n"
    "[metrics]\nport = 9200\n"
    "[nodes.router]\nhost = \"10.0.0.1\"\ncontrol_port = 5550\ndata_port = 5551\nrouter = true\n"
    "[nodes.b-experts]\nhost = \"10.0.0.3\"\ncontrol_port = 5550\ndata_port = 5551\n"
    "metrics_port = 9102\n"
    "[nodes.a-experts]\nhost = \"10.0.0.2\"\ncontrol_port = 5550\ndata_port = 5551\n"
    "metrics_port = 9101\n"
    "[nodes.spare]\nhost = \"10.0.0.4\"\ncontrol_port = 5550\ndata_port = 5551\n"
    "[shards.a]\nnode = \"a-experts\"\nexperts = \"all\"\n";

TEST(PrometheusTargets, RouterAndExpertNodesWithAMetricsPortInNameOrder) {
  const auto targets = metrics_targets(parse_graph(kGraph, "g.toml"));
  ASSERT_EQ(targets.size(), 3u);  // the spare has no metrics_port
  EXPECT_EQ(targets[0].node, "a-experts");
  EXPECT_EQ(targets[0].role, "expert");
  EXPECT_EQ(targets[0].address, "10.0.0.2:9101");
  EXPECT_EQ(targets[1].node, "b-experts");
  EXPECT_EQ(targets[1].address, "10.0.0.3:9102");
  EXPECT_EQ(targets[2].node, "router");
  EXPECT_EQ(targets[2].role, "router");
  // [metrics] host is a bind address (127.0.0.1 by default): Prometheus dials that one.
  EXPECT_EQ(targets[2].address, "127.0.0.1:9200");
}

TEST(PrometheusTargets, WildcardMetricsHostIsDialledAtTheRouterNodesHost) {
  std::string text = kGraph;
  text.replace(text.find("port = 9200"), 11, "host = \"0.0.0.0\"\nport = 9200");
  const auto targets = metrics_targets(parse_graph(text, "g.toml"));
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[2].address, "10.0.0.1:9200");
}

TEST(PrometheusTargets, Ipv6HostsAreBracketed) {
  const auto targets = metrics_targets(parse_graph(
      "[model]\npath = \"m\"\n[metrics]\nhost = \"::1\"\n"
      "[nodes.r]\nhost = \"fd00::1\"\ncontrol_port = 1\ndata_port = 2\nrouter = true\n"
      "[nodes.e]\nhost = \"fd00::2\"\ncontrol_port = 1\ndata_port = 2\nmetrics_port = 3\n",
      "g.toml"));
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].address, "[fd00::2]:3");
  EXPECT_EQ(targets[1].address, "[::1]:9100");
}

TEST(PrometheusTargets, ShortFormIsTheOneRouterNode) {
  const auto targets = metrics_targets(parse_graph("[model]\npath = \"m\"\n", "g.toml"));
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].node, "local");
  EXPECT_EQ(targets[0].role, "router");
  EXPECT_EQ(targets[0].address, "127.0.0.1:9100");
}

TEST(PrometheusTargets, FileSdJson) {
  const std::string text = prometheus_targets_json(parse_graph(kGraph, "g.toml"), "cluster");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const nlohmann::json j = nlohmann::json::parse(text);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  const nlohmann::json want = {
      {"targets", nlohmann::json::array({"10.0.0.2:9101"})},
      {"labels", {{"node", "a-experts"}, {"role", "expert"}, {"graph", "cluster"}}}};
  EXPECT_EQ(j[0], want) << text;
  EXPECT_EQ(j[2]["labels"]["role"], "router");
  for (const auto& entry : j) {
    EXPECT_EQ(entry.size(), 2u) << entry;  // only targets and labels, as file_sd wants
    EXPECT_EQ(entry["targets"].size(), 1u) << entry;
  }
}

}  // namespace
}  // namespace moeflow
