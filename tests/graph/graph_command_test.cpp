// `moeflow graph check|dot|targets` as an operator runs them, and the committed configs/ checking
// clean.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "graph/graph.h"
#include "tests/graph/graph_test_util.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

using test_support::contains;
using Result = test_support::CommandResult;

// Runs the binary from the repository root, so that paths look as they do to an operator.
Result run(const std::string& args) {
  return test_support::run_command("cd '" + std::string(MOEFLOW_SOURCE_DIR) + "' && '" +
                                   MOEFLOW_BINARY + "' " + args);
}

TEST(GraphConfigs, CommittedConfigsCheckClean) {
  for (const char* name : {"local.toml", "three-node.toml"}) {
    const auto file = std::filesystem::path(MOEFLOW_SOURCE_DIR) / "configs" / name;
    const auto ds = test_support::load_errors(file);
    EXPECT_TRUE(ds.empty()) << name << test_support::describe(ds);
  }
  const GraphSpec g =
      load_graph(std::filesystem::path(MOEFLOW_SOURCE_DIR) / "configs" / "three-node.toml");
  EXPECT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.router_node().name, "router");
  ASSERT_EQ(g.shards.size(), 2u);
  EXPECT_EQ(g.shards_on("experts-a").size(), 1u);
  EXPECT_EQ(g.shards_on("experts-b").size(), 1u);
  EXPECT_EQ(g.shards_on("router").size(), 0u);
}

TEST(GraphCommand, CheckPrintsASummary) {
  Result r = run("graph check configs/three-node.toml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "configs/three-node.toml: ok (3 nodes, 2 shards, 3 layers x 8 experts covered)\n");
  r = run("graph check configs/local.toml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "configs/local.toml: ok (1 node, 1 shard, 4 layers x 8 experts covered)\n");
}

TEST(GraphCommand, CheckListsEveryProblemWithLocationAndHint) {
  test_support::TempDir dir;
  const auto file = test_support::write_toml(
      dir.path(), "bad.toml",
      test_support::model_table() +
          "[shards.a]\nexprets = \"0-3\"\n[shards.b]\nexperts = \"4-9\"\n");
  const Result r = run("graph check " + file.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string f = file.string();
  EXPECT_TRUE(contains(r.output, f + ":3:1: error: shard \"a\" has no experts\n")) << r.output;
  EXPECT_TRUE(contains(r.output, f + ":4:1: error: unknown key \"exprets\" in [shards.a]\n"
                                     "  hint: did you mean \"experts\"?\n"))
      << r.output;
  EXPECT_TRUE(
      contains(r.output, f + ":6:11: error: shard \"b\": experts 8-9 are outside the model"))
      << r.output;
  EXPECT_TRUE(contains(r.output, f + ": 3 errors\n")) << r.output;
}

TEST(GraphCommand, DotPrintsTheDigraph) {
  const Result r = run("graph dot configs/three-node.toml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "digraph moeflow {")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"router:router\" -> \"shard:a\"")) << r.output;
}

TEST(GraphCommand, TargetsPrintsFileSdJsonForTheCommittedExample) {
  const Result r = run("graph targets configs/three-node.toml 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.output;
  ASSERT_EQ(j.size(), 3u) << r.output;
  const auto entry = [](const char* address, const char* node, const char* role) {
    return nlohmann::json{{"targets", nlohmann::json::array({address})},
                          {"labels", {{"node", node}, {"role", role}, {"graph", "three-node"}}}};
  };
  EXPECT_EQ(j[0], entry("127.0.0.1:9101", "experts-a", "expert")) << r.output;
  EXPECT_EQ(j[1], entry("127.0.0.1:9102", "experts-b", "expert")) << r.output;
  EXPECT_EQ(j[2], entry("127.0.0.1:9100", "router", "router")) << r.output;
}

TEST(GraphCommand, TargetsNeedsNoModelButAValidGraph) {
  test_support::TempDir dir;
  // The model folder does not exist: targets does not read it.
  auto file = test_support::write_toml(
      dir.path(), "c.toml",
      "[model]\npath = \"/nonexistent\"\n"
      "[nodes.r]\nhost = \"10.0.0.1\"\ncontrol_port = 1\ndata_port = 2\nrouter = true\n"
      "[nodes.e]\nhost = \"10.0.0.2\"\ncontrol_port = 1\ndata_port = 2\n");
  Result r = run("graph targets " + file.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "node \"e\" has no metrics_port; it is not listed")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"127.0.0.1:9100\"")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"graph\": \"c\"")) << r.output;

  file = test_support::write_toml(dir.path(), "bad.toml",
                                  "[model]\npath = \"m\"\n[metrics]\nport = 0\n");
  r = run("graph targets " + file.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, file.string() + ":4:8: error: port 0 in [metrics] is outside"))
      << r.output;
  r = run("graph targets " + (dir.path() / "missing.toml").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot read the graph file")) << r.output;
}

TEST(GraphCommand, UsageAndBadArguments) {
  EXPECT_EQ(run("graph").exit_code, 2);
  Result r = run("graph --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "moeflow graph check FILE")) << r.output;
  EXPECT_TRUE(contains(r.output, "moeflow graph targets FILE")) << r.output;
  r = run("graph lint configs/local.toml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "unknown graph command \"lint\"")) << r.output;
  EXPECT_EQ(run("graph check").exit_code, 1);
  EXPECT_TRUE(contains(run("--help").output, "graph"));
}

}  // namespace
}  // namespace moeflow
