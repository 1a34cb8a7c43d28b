// The autoscaler on a running router node: skewed traffic (prompts that send most tokens to a few
// experts) gets replicas of exactly the experts the policy calls hot, the generated tokens do not
// change, and once the traffic stops the added replicas retire after the cool-down.
#include "actors/autoscaler.h"

#include <gtest/gtest.h>

#include <httplib.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/added_replicas.h"
#include "core/child_process.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"
#include "tests/support/temp_dir.h"
#include "transport/endpoint.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

TEST(Autoscaler, SkewedTrafficReplicatesTheHotExpertsAndIdleRetiresThem) {
  const auto golden = test_support::load_golden("mixtral");
  test_support::TempDir dir;
  const auto file = dir.path() / "graph.toml";
  std::ofstream(file) << "[model]\npath = \"" << golden.dir.string() << "\"\n\n"
                      << "[scaling]\nenabled = true\nhot_load = 1.5\ncold_load = 0.5\n"
                      << "max_replicas = 2\nmemory_mb = 1024\nwindow_ms = 150\ncooldown_ms = 300\n";
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), 10s);
  std::vector<std::string> log;
  Autoscaler autoscaler(*node, [&log](const std::string& line) { log.push_back(line); });

  // One token repeated: every row of a layer routes the same way, so a layer's load sits on
  // top_k experts.
  const std::vector<std::vector<int32_t>> skewed(4, std::vector<int32_t>(24, 7));
  const auto requests = test_support::greedy_requests(skewed, 8);
  const auto baseline = test_support::run_requests(system, node->pipeline.scheduler, requests);
  node->routing->flush();
  const auto before = node->routing->token_totals();

  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    while (!stop) {
      const auto outcomes = test_support::run_requests(system, node->pipeline.scheduler, requests);
      for (size_t i = 0; i < outcomes.size(); ++i) {
        EXPECT_EQ(outcomes[i].error, "");
        EXPECT_EQ(outcomes[i].result.tokens, baseline[i].result.tokens);
      }
    }
  });
  std::vector<ScalingAction> adds;
  for (auto deadline = std::chrono::steady_clock::now() + 3s;
       adds.empty() && std::chrono::steady_clock::now() < deadline;) {
    for (const auto& a : autoscaler.poll()) adds.push_back(a);
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(200ms);  // traffic over the new placement
  stop = true;
  traffic.join();
  ASSERT_FALSE(adds.empty()) << "no replica added under skewed traffic";

  // Exactly the hot experts: load above 1.5x its layer's mean over the baseline run's routing
  // (the same requests route the same way every time).
  node->routing->flush();
  for (const auto& a : adds) {
    EXPECT_EQ(a.kind, ScalingAction::Kind::add);
    const auto& row = before[a.layer];
    double sum = 0;
    for (auto t : row) sum += static_cast<double>(t);
    EXPECT_GT(static_cast<double>(row[a.expert]), 1.5 * sum / static_cast<double>(row.size()))
        << "layer " << a.layer << " expert " << a.expert << " is not hot";
  }
  std::string text = node->registry->exposition();
  const std::string series = "moeflow_expert_replicas{expert=\"" + std::to_string(adds[0].expert) +
                             "\",layer=\"" + std::to_string(adds[0].layer) + "\"}";
  EXPECT_EQ(test_support::metric_sample(text, series), 2.0) << text;
  EXPECT_GE(test_support::metric_sum(text, "moeflow_autoscaler_actions_total",
                                     {{"action", "add"}, {"reason", "hot"}}),
            1.0);

  // No traffic: after the cool-down every added replica retires, one per expert and window.
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       !node->added.empty() && std::chrono::steady_clock::now() < deadline;) {
    autoscaler.poll();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(node->added.empty());
  text = node->registry->exposition();
  EXPECT_EQ(test_support::metric_sample(text, series), 1.0);
  EXPECT_GE(test_support::metric_sum(text, "moeflow_autoscaler_actions_total",
                                     {{"action", "retire"}, {"reason", "idle"}}),
            1.0);
  // And the node still serves the same tokens on the graph's own placement.
  const auto after = test_support::run_requests(system, node->pipeline.scheduler, requests);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].result.tokens, baseline[i].result.tokens);
  bool logged = false;
  for (const auto& line : log)
    logged |= line.find("autoscaler: add a replica") != std::string::npos;
  EXPECT_TRUE(logged);
}

// Three processes: this one is the router node, two `moeflow serve` children are expert nodes
// each holding half the experts. Under skewed traffic every added replica goes to the expert node
// that does not hold that expert, is loaded there, and computes pairs there; idle, it retires and
// the node drops it.
TEST(Autoscaler, ReplicasGoToTheExpertNodeWithoutTheExpertAndLeaveItWhenRetired) {
  const auto golden = test_support::load_golden("mixtral");
  const int experts =
      nlohmann::json::parse(std::ifstream(golden.dir / "config.json"))["num_local_experts"];
  const int half = experts / 2;
  test_support::TempDir dir;
  const auto file = dir.path() / "graph.toml";
  auto port = [] { return transport::free_loopback_port(); };
  const int a_metrics = port(), b_metrics = port();
  std::ofstream(file) << "[model]\npath = \"" << golden.dir.string() << "\"\n\n"
                      << "[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 2000\n\n"
                      << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
                      << "\ndata_port = " << port() << "\nrouter = true\n\n"
                      << "[nodes.experts-a]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
                      << "\ndata_port = " << port() << "\nmetrics_port = " << a_metrics << "\n\n"
                      << "[nodes.experts-b]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
                      << "\ndata_port = " << port() << "\nmetrics_port = " << b_metrics << "\n\n"
                      << "[shards.a]\nnode = \"experts-a\"\nexperts = \"0-" << half - 1 << "\"\n\n"
                      << "[shards.b]\nnode = \"experts-b\"\nexperts = \"" << half << "-"
                      << experts - 1 << "\"\n\n"
                      << "[scaling]\nenabled = true\nhot_load = 1.5\ncold_load = 0.5\n"
                      << "max_replicas = 2\nmemory_mb = 1024\nwindow_ms = 150\ncooldown_ms = 300\n";
  auto start = [&](const std::string& name) {
    return std::make_unique<ChildProcess>(
        MOEFLOW_BINARY, std::vector<std::string>{"serve", "--graph", file.string(), "--node", name},
        dir.path() / (name + ".log"));
  };
  auto node_a = start("experts-a");
  auto node_b = start("experts-b");
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), 10s);
  std::vector<std::string> log;
  Autoscaler autoscaler(*node, [&log](const std::string& line) { log.push_back(line); });
  auto scrape = [&](const std::string& name) {
    httplib::Client client("127.0.0.1", name == "experts-a" ? a_metrics : b_metrics);
    auto res = client.Get("/metrics");
    return res && res->status == 200 ? res->body : std::string();
  };

  const std::vector<std::vector<int32_t>> skewed(4, std::vector<int32_t>(24, 7));
  const auto requests = test_support::greedy_requests(skewed, 8);
  const auto baseline = test_support::run_requests(system, node->pipeline.scheduler, requests);
  for (const auto& o : baseline) ASSERT_EQ(o.error, "");

  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    while (!stop) {
      const auto outcomes = test_support::run_requests(system, node->pipeline.scheduler, requests);
      for (size_t i = 0; i < outcomes.size(); ++i) {
        EXPECT_EQ(outcomes[i].error, "");
        EXPECT_EQ(outcomes[i].result.tokens, baseline[i].result.tokens);
      }
    }
  });
  for (auto deadline = std::chrono::steady_clock::now() + 15s;
       (node->added.empty() || autoscaler.loading() > 0) &&
       std::chrono::steady_clock::now() < deadline;) {
    autoscaler.poll();
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(300ms);  // traffic over the new placement
  stop = true;
  traffic.join();
  ASSERT_FALSE(node->added.empty()) << "no replica joined under skewed traffic";

  std::set<std::string> targets;
  for (const auto& r : node->added) {
    const std::string holder = r.expert < half ? "experts-a" : "experts-b";
    const std::string other = r.expert < half ? "experts-b" : "experts-a";
    EXPECT_EQ(r.node, other) << "layer " << r.layer << " expert " << r.expert << " (held by "
                             << holder << ")";
    targets.insert(r.node);
    // Its pairs were computed on that node, by the replica.
    const std::string text = scrape(r.node);
    ASSERT_FALSE(text.empty()) << "no /metrics from " << r.node;
    EXPECT_GT(test_support::metric_sum(text, "moeflow_shard_pairs_total",
                                       {{"shard", added_replica_name(r.layer, r.expert)}}),
              0.0)
        << r.node << " computed nothing for layer " << r.layer << " expert " << r.expert;
  }
  for (const auto& name : targets)
    EXPECT_GE(test_support::metric_sum(scrape(name), "moeflow_node_added_replicas", {}), 1.0);

  // Idle: the replicas retire after the cool-down and the nodes drop them.
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       !node->added.empty() && std::chrono::steady_clock::now() < deadline;) {
    autoscaler.poll();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(node->added.empty());
  for (const auto& name : targets) {
    double held = -1;
    for (auto deadline = std::chrono::steady_clock::now() + 3s;
         held != 0 && std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(20ms)) {
      const std::string text = scrape(name);
      held = text.empty() ? -1 : test_support::metric_sum(text, "moeflow_node_added_replicas", {});
    }
    EXPECT_EQ(held, 0.0) << name << " still serves added replicas";
  }
  const auto after = test_support::run_requests(system, node->pipeline.scheduler, requests);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].result.tokens, baseline[i].result.tokens);
}

}  // namespace
}  // namespace moeflow
