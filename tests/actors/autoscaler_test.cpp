// The autoscaler on a running router node: skewed traffic (prompts that send most tokens to a few
// experts) gets replicas of exactly the experts the policy calls hot, the generated tokens do not
// change, and once the traffic stops the added replicas retire after the cool-down.
#include "actors/autoscaler.h"

#include <gtest/gtest.h>

#include <httplib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
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

// The autoscaler settings of these tests: quick windows and cool-downs, at most one added replica
// per expert.
const char* const kScaling =
    "[scaling]\nenabled = true\nhot_load = 1.5\ncold_load = 0.5\n"
    "max_replicas = 2\nmemory_mb = 1024\nwindow_ms = 150\ncooldown_ms = 300\n";

// One token repeated: every row of a layer routes the same way, so a layer's load sits on top_k
// experts.
std::vector<GenerationRequest> skewed_requests() {
  const std::vector<std::vector<int32_t>> skewed(4, std::vector<int32_t>(24, 7));
  return test_support::greedy_requests(skewed, 8);
}

TEST(Autoscaler, SkewedTrafficReplicatesTheHotExpertsAndIdleRetiresThem) {
  const auto golden = test_support::load_golden("mixtral");
  test_support::TempDir dir;
  const auto file = dir.path() / "graph.toml";
  std::ofstream(file) << "[model]\npath = \"" << golden.dir.string() << "\"\n\n" << kScaling;
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), 10s);
  std::vector<std::string> log;
  Autoscaler autoscaler(*node, [&log](const std::string& line) { log.push_back(line); });

  const auto requests = skewed_requests();
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

// Three processes: this one is the router node, two `moeflow serve` children are expert nodes.
// Each layer's experts are split so that the ones the skewed prompt uses most are all on
// experts-a (measured first on a one-process node). Under that traffic every added replica goes
// to the node that does not hold the expert, is loaded there, and takes work off experts-a; idle,
// it retires and the node drops it.
TEST(Autoscaler, ReplicasGoToTheExpertNodeWithoutTheExpertAndLeaveItWhenRetired) {
  const auto golden = test_support::load_golden("mixtral");
  test_support::TempDir dir;
  const auto requests = skewed_requests();

  // The skew, measured: per layer, the experts by tokens, most first; the top half go to a.
  std::vector<test_support::Outcome> baseline;
  std::vector<std::vector<bool>> on_a;
  {
    std::ofstream(dir.path() / "one.toml") << "[model]\npath = \"" << golden.dir.string() << "\"\n";
    ActorSystemConfig cfg;
    caf::actor_system system{cfg};
    auto node = start_router_node(system, load_graph(dir.path() / "one.toml"), 10s);
    baseline = test_support::run_requests(system, node->pipeline.scheduler, requests);
    node->routing->flush();
    for (const auto& row : node->routing->token_totals()) {
      std::vector<size_t> order(row.size());
      for (size_t e = 0; e < order.size(); ++e) order[e] = e;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return row[x] > row[y]; });
      on_a.emplace_back(row.size(), false);
      for (size_t k = 0; k < order.size() / 2; ++k) on_a.back()[order[k]] = true;
    }
  }
  for (const auto& o : baseline) ASSERT_EQ(o.error, "");

  const auto file = dir.path() / "graph.toml";
  auto port = [] { return transport::free_loopback_port(); };
  const int a_metrics = port(), b_metrics = port();
  {
    std::ofstream out(file);
    out << "[model]\npath = \"" << golden.dir.string() << "\"\n\n"
        << "[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 2000\n\n"
        << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
        << "\ndata_port = " << port() << "\nrouter = true\n\n"
        << "[nodes.experts-a]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
        << "\ndata_port = " << port() << "\nmetrics_port = " << a_metrics << "\n\n"
        << "[nodes.experts-b]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
        << "\ndata_port = " << port() << "\nmetrics_port = " << b_metrics << "\n\n"
        << kScaling << "\n";
    for (size_t l = 0; l < on_a.size(); ++l)
      for (const bool a : {true, false}) {
        std::string ids;
        for (size_t e = 0; e < on_a[l].size(); ++e)
          if (on_a[l][e] == a) ids += (ids.empty() ? "" : ",") + std::to_string(e);
        out << "[shards." << (a ? "a" : "b") << l << "]\nnode = \"experts-" << (a ? "a" : "b")
            << "\"\nlayers = \"" << l << "\"\nexperts = \"" << ids << "\"\n\n";
      }
  }
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
  Autoscaler autoscaler(*node, [](const std::string&) {});
  auto scrape = [&](const std::string& name) {
    httplib::Client client("127.0.0.1", name == "experts-a" ? a_metrics : b_metrics);
    auto res = client.Get("/metrics");
    return res && res->status == 200 ? res->body : std::string();
  };
  // Pairs computed so far by each node, and a's share of them since `before`.
  auto pairs = [&] {
    std::array<double, 2> p{};
    for (int i = 0; i < 2; ++i) {
      const std::string text = scrape(i == 0 ? "experts-a" : "experts-b");
      EXPECT_FALSE(text.empty()) << "no /metrics from node " << i;
      p[i] = test_support::metric_sum(text, "moeflow_shard_pairs_total", {});
    }
    return p;
  };
  auto share_of_a = [](std::array<double, 2> before, std::array<double, 2> after) {
    const double a = after[0] - before[0], b = after[1] - before[1];
    return a / (a + b);
  };
  auto expect_baseline_tokens = [&] {
    const auto outcomes = test_support::run_requests(system, node->pipeline.scheduler, requests);
    for (size_t i = 0; i < outcomes.size(); ++i) {
      EXPECT_EQ(outcomes[i].error, "");
      EXPECT_EQ(outcomes[i].result.tokens, baseline[i].result.tokens);
    }
  };

  const auto p0 = pairs();
  expect_baseline_tokens();
  const auto p1 = pairs();
  const double skewed_share = share_of_a(p0, p1);
  EXPECT_GT(skewed_share, 0.7) << "the placement does not put the skew on experts-a";

  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    while (!stop) expect_baseline_tokens();
  });
  for (auto deadline = std::chrono::steady_clock::now() + 15s;
       (node->added.empty() || autoscaler.loading() > 0) &&
       std::chrono::steady_clock::now() < deadline;) {
    autoscaler.poll();
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  traffic.join();
  ASSERT_FALSE(node->added.empty()) << "no replica joined under skewed traffic";
  for (const auto& r : node->added)
    EXPECT_EQ(r.node, on_a[r.layer][r.expert] ? "experts-b" : "experts-a")
        << "layer " << r.layer << " expert " << r.expert;

  // The same traffic over the new placement: the same tokens, and b takes work off a, through
  // the replicas it loaded.
  const auto p2 = pairs();
  expect_baseline_tokens();
  const auto p3 = pairs();
  const double balanced_share = share_of_a(p2, p3);
  EXPECT_LT(balanced_share, skewed_share - 0.1)
      << "experts-a's share of the pairs: " << skewed_share << " before, " << balanced_share
      << " with the replicas";
  const std::string b_text = scrape("experts-b");
  double on_replicas = 0;
  for (const auto& r : node->added)
    if (r.node == "experts-b")
      on_replicas += test_support::metric_sum(b_text, "moeflow_shard_pairs_total",
                                              {{"shard", added_replica_name(r.layer, r.expert)}});
  EXPECT_GT(on_replicas, 0.0);
  EXPECT_GE(test_support::metric_sum(b_text, "moeflow_node_added_replicas", {}), 1.0);

  // Idle: the replicas retire after the cool-down and the nodes drop them.
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       !node->added.empty() && std::chrono::steady_clock::now() < deadline;) {
    autoscaler.poll();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(node->added.empty());
  for (const char* name : {"experts-a", "experts-b"}) {
    double held = -1;
    for (auto deadline = std::chrono::steady_clock::now() + 3s;
         held != 0 && std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(20ms)) {
      const std::string text = scrape(name);
      held = text.empty() ? -1 : test_support::metric_sum(text, "moeflow_node_added_replicas", {});
    }
    EXPECT_EQ(held, 0.0) << name << " still serves added replicas";
  }
  expect_baseline_tokens();
}

// A replica that cannot load (here: the checkpoint was deleted from under the running node, whose
// own weights stay mapped) is logged with why and counted as failed; the node keeps serving the
// same tokens and the autoscaler keeps deciding.
TEST(Autoscaler, AReplicaThatCannotLoadIsLoggedAndCountedAndServingGoesOn) {
  const auto golden = test_support::load_golden("mixtral");
  test_support::TempDir dir;
  const auto model = dir.path() / "model";
  std::filesystem::create_directories(model);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(golden.dir / f, model / f);
  const auto file = dir.path() / "graph.toml";
  std::ofstream(file) << "[model]\npath = \"" << model.string() << "\"\n\n" << kScaling;
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), 10s);
  std::vector<std::string> log;
  Autoscaler autoscaler(*node, [&log](const std::string& line) { log.push_back(line); });
  const auto requests = skewed_requests();
  const auto baseline = test_support::run_requests(system, node->pipeline.scheduler, requests);
  std::filesystem::remove(model / "model.safetensors");  // mapped pages stay valid (unlinked)

  const auto failed = [&] {
    return test_support::metric_sum(node->registry->exposition(),
                                    "moeflow_autoscaler_actions_total", {{"action", "failed"}});
  };
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       failed() == 0 && std::chrono::steady_clock::now() < deadline;) {
    const auto outcomes = test_support::run_requests(system, node->pipeline.scheduler, requests);
    for (size_t i = 0; i < outcomes.size(); ++i) {
      EXPECT_EQ(outcomes[i].error, "");
      EXPECT_EQ(outcomes[i].result.tokens, baseline[i].result.tokens);
    }
    autoscaler.poll();
  }
  ASSERT_GT(failed(), 0) << "no failed add counted under skewed traffic";
  EXPECT_TRUE(node->added.empty()) << "a replica that did not load serves";
  const auto line = std::find_if(log.begin(), log.end(), [](const std::string& l) {
    return l.find("could not add a replica") != std::string::npos;
  });
  ASSERT_NE(line, log.end());
  EXPECT_NE(line->find("on the router node, cpu"), std::string::npos) << *line;
  EXPECT_NE(line->find("model.safetensors"), std::string::npos) << *line;
  const auto after = test_support::run_requests(system, node->pipeline.scheduler, requests);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].result.tokens, baseline[i].result.tokens);
}

}  // namespace
}  // namespace moeflow
