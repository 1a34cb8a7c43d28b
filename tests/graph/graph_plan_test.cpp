// plan_graph_change and `moeflow graph plan`: what an edit changes and whether it is live.
#include "graph/graph_plan.h"

#include <gtest/gtest.h>

#include "model/model_config.h"
#include "tests/graph/graph_test_util.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

// Two shards on the implicit router node: a holds `a_experts`, b holds `b_experts`.
std::string local_graph(const std::string& a_experts, const std::string& b_experts,
                        const std::string& extra = "") {
  return test_support::model_table() + "\n[shards.a]\nexperts = \"" + a_experts +
         "\"\n\n[shards.b]\nexperts = \"" + b_experts + "\"\n" + extra;
}

GraphPlan plan(const std::string& before, const std::string& after) {
  const GraphSpec b = parse_graph(before, "old.toml"), a = parse_graph(after, "new.toml");
  return plan_graph_change(b, a, load_model_config(a.model.path));
}

TEST(GraphPlan, IdenticalGraphsHaveNoChanges) {
  const GraphPlan p = plan(local_graph("0-3", "4-7"), local_graph("0-3", "4-7"));
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(format_plan(p), "no changes\n");
}

TEST(GraphPlan, MovingExpertsBetweenRouterShardsIsLive) {
  // Mixtral golden: 3 MoE layers, 8 experts. Experts 2-3 move from a to b in every layer.
  const GraphPlan p = plan(local_graph("0-3", "4-7"), local_graph("0-1", "2-7"));
  EXPECT_TRUE(p.live()) << format_plan(p);
  ASSERT_EQ(p.experts.size(), 6u);  // two shards x three layers
  EXPECT_EQ(p.experts[0].shard, "a");
  EXPECT_EQ(p.experts[0].lost, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(p.experts[3].shard, "b");
  EXPECT_EQ(p.experts[3].gained, (std::vector<int64_t>{2, 3}));
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("~ shard a (node local) layer 0: drops experts 2-3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("applied live: yes"), std::string::npos) << text;
}

TEST(GraphPlan, AddedShardAndSchedulerLimitsAreLive) {
  const GraphPlan p = plan(
      local_graph("0-3", "4-7"),
      local_graph("0-3", "4-7", "\n[shards.c]\nexperts = \"5\"\n\n[scheduler]\nmax_running = 8\n"));
  EXPECT_TRUE(p.live()) << format_plan(p);
  EXPECT_EQ(p.shards_added, std::vector<std::string>{"c"});
  EXPECT_EQ(p.settings, std::vector<std::string>{"scheduler.max_running: 64 -> 8"});
}

TEST(GraphPlan, MovingAShardToAGpuIsLive) {
  const GraphPlan p =
      plan(local_graph("0-3", "4-7"), local_graph("0-3", "4-7\"\ndevice = \"cuda:0"));
  EXPECT_TRUE(p.live()) << format_plan(p);
  EXPECT_TRUE(p.experts.empty());
  EXPECT_EQ(p.devices, std::vector<std::string>{"shard b (node local): cpu -> cuda:0"});
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("~ shard b (node local): cpu -> cuda:0 (loads its experts there"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("applied live: yes"), std::string::npos) << text;
}

TEST(GraphPlan, MovingTheRouterStageToAGpuNeedsARouterRestart) {
  const GraphSpec b = parse_graph(local_graph("0-3", "4-7"), "old.toml");
  GraphSpec a = parse_graph(local_graph("0-3", "4-7"), "new.toml");
  a.model.router_device = "cuda:0";
  const GraphPlan p = plan_graph_change(b, a, load_model_config(a.model.path));
  EXPECT_FALSE(p.live());
  EXPECT_EQ(p.restart, std::vector<std::string>{
                           "model.router_device: cpu -> cuda:0: restart the router node"});
}

TEST(GraphPlan, ExpertNodeShardsChangeLiveButEndpointsNeedARestart) {
  const std::string nodes =
      "[nodes.r]\nhost = \"127.0.0.1\"\ncontrol_port = 5550\ndata_port = 5551\nrouter = true\n\n"
      "[nodes.e]\nhost = \"127.0.0.1\"\ncontrol_port = 5560\ndata_port = 5561\n\n";
  const std::string before =
      test_support::model_table() + "\n" + nodes + "[shards.a]\nnode = \"e\"\nexperts = \"all\"\n";
  const std::string after = test_support::model_table() + "\n[api]\nport = 8100\n\n" + nodes +
                            "[shards.a]\nnode = \"e\"\nexperts = \"0-6\"\n\n"
                            "[shards.b]\nnode = \"r\"\nexperts = \"7\"\n";
  const GraphPlan p = plan(before, after);
  EXPECT_FALSE(p.live());
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("! api.port: 8000 -> 8100: restart every node"), std::string::npos) << text;
  EXPECT_NE(text.find("~ shard a (node e) layer 0: drops experts 7"), std::string::npos) << text;
  EXPECT_NE(text.find("applied live: no"), std::string::npos) << text;
  // Without the port change the same shard edit is live.
  std::string same_port = after;
  same_port.erase(same_port.find("[api]"), std::string("[api]\nport = 8100\n\n").size());
  EXPECT_TRUE(plan(before, same_port).live()) << format_plan(plan(before, same_port));
}

TEST(GraphPlan, ExpertNodesComeAndGoLiveButTheRouterNodeDoesNot) {
  const std::string router =
      "[nodes.r]\nhost = \"127.0.0.1\"\ncontrol_port = 5550\ndata_port = 5551\nrouter = true\n\n";
  const std::string node_e =
      "[nodes.e]\nhost = \"127.0.0.1\"\ncontrol_port = 5560\ndata_port = 5561\n\n";
  const std::string before =
      test_support::model_table() + "\n" + router + "[shards.a]\nnode = \"r\"\nexperts = \"all\"\n";
  const std::string after = test_support::model_table() + "\n" + router + node_e +
                            "[shards.a]\nnode = \"r\"\nexperts = \"0-3\"\n\n"
                            "[shards.b]\nnode = \"e\"\nexperts = \"4-7\"\n";
  GraphPlan p = plan(before, after);
  EXPECT_TRUE(p.live()) << format_plan(p);
  EXPECT_EQ(p.nodes_added, std::vector<std::string>{"e"});
  EXPECT_NE(format_plan(p).find("+ node e"), std::string::npos) << format_plan(p);
  p = plan(after, before);
  EXPECT_TRUE(p.live()) << format_plan(p);
  EXPECT_EQ(p.nodes_removed, std::vector<std::string>{"e"});
  EXPECT_NE(format_plan(p).find("- node e"), std::string::npos) << format_plan(p);

  // A changed port of a node that stays, or another router node, still needs a restart.
  std::string moved = after;
  moved.replace(moved.find("5560"), 4, "5570");
  p = plan(after, moved);
  EXPECT_FALSE(p.live());
  EXPECT_NE(format_plan(p).find("! node e control_port: 5560 -> 5570"), std::string::npos)
      << format_plan(p);
  std::string new_router = before;
  new_router.replace(new_router.find("[nodes.r]"), 9, "[nodes.r2]");
  new_router.replace(new_router.find("node = \"r\""), 10, "node = \"r2\"");
  p = plan(before, new_router);
  EXPECT_FALSE(p.live());
  EXPECT_NE(format_plan(p).find("! node r removed: it runs the router"), std::string::npos)
      << format_plan(p);
}

TEST(GraphPlan, CommandPrintsThePlanAndExitsByLiveness) {
  test_support::TempDir dir;
  const auto old_file = test_support::write_toml(dir.path(), "old.toml", local_graph("0-3", "4-7"));
  const auto live = test_support::write_toml(dir.path(), "live.toml", local_graph("0-4", "5-7"));
  const auto restart = test_support::write_toml(
      dir.path(), "restart.toml", local_graph("0-3", "4-7", "\n[timeouts]\nrequest_ms = 500\n"));
  const auto broken = test_support::write_toml(dir.path(), "broken.toml", "[model\n");
  const std::string bin = std::string("'") + MOEFLOW_BINARY + "' graph plan ";
  auto r = test_support::run_command(bin + old_file.string() + " " + live.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gains experts 4"), std::string::npos) << r.output;
  r = test_support::run_command(bin + old_file.string() + " " + restart.string());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("timeouts.request_ms: 10000 -> 500"), std::string::npos) << r.output;
  r = test_support::run_command(bin + old_file.string() + " " + broken.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("broken.toml:1:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace moeflow
