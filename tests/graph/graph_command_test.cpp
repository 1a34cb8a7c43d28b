// `moeflow graph check|dot` as an operator runs them, and the committed configs/ checking clean.
#include <gtest/gtest.h>

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

TEST(GraphCommand, UsageAndBadArguments) {
  EXPECT_EQ(run("graph").exit_code, 2);
  Result r = run("graph --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "moeflow graph check FILE")) << r.output;
  r = run("graph lint configs/local.toml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "unknown graph command \"lint\"")) << r.output;
  EXPECT_EQ(run("graph check").exit_code, 1);
  EXPECT_TRUE(contains(run("--help").output, "graph"));
}

}  // namespace
}  // namespace moeflow
