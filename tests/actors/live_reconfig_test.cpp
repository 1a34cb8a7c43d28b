// Live reconfiguration across three processes on loopback: this test process is the router node,
// two `moeflow serve` children are the expert nodes, all reading the same graph file. Editing the
// file moves experts between the expert nodes while 16 requests stream; a broken edit changes
// nothing and is reported.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/graph_reloader.h"
#include "actors/router_node.h"
#include "core/child_process.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"
#include "tests/support/temp_dir.h"
#include "transport/endpoint.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

class LiveReconfig : public ::testing::Test {
 protected:
  void SetUp() override {
    golden_ = test_support::load_golden("mixtral");  // 3 MoE layers x 8 experts
    for (int& p : ports_) p = transport::free_loopback_port();
    file_ = temp_.path() / "graph.toml";
    write_graph("0-3", "4-7");
    node_a_ = start_node("experts-a");
    node_b_ = start_node("experts-b");
    node_ = start_router_node(system_, load_graph(file_), 10s);
    reloader_ = std::make_unique<RouterGraphReloader>(
        *node_, nullptr, 20s, [this](const std::string& line) { log_.push_back(line); });
  }
  void TearDown() override {
    if (traffic_.joinable()) stop_traffic();  // a failed assertion left it running
    reloader_.reset();
    node_.reset();
    if (HasFailure()) {
      for (const auto& line : log_) std::cerr << "router: " << line << "\n";
      if (node_a_) std::cerr << "experts-a log:\n" << node_a_->log();
      if (node_b_) std::cerr << "experts-b log:\n" << node_b_->log();
    }
  }

  // Shard a on experts-a and shard b on experts-b with these experts ("" leaves the shard out),
  // in graph.toml or, with `file`, in another file; `nodes` lists the expert nodes in the graph.
  void write_graph(const std::string& a, const std::string& b, const std::string& extra = "",
                   const std::vector<std::string>& nodes = {"experts-a", "experts-b"},
                   std::filesystem::path file = {}) {
    if (file.empty()) file = file_;
    std::ofstream out(file.string() + ".tmp");
    out << "[model]\npath = \"" << golden_.dir.string() << "\"\n\n"
        << "[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 600\nrequest_ms = 3000\n\n"
        << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << ports_[0]
        << "\ndata_port = " << ports_[1] << "\nrouter = true\n\n";
    for (const std::string& n : nodes) {
      const int i = n == "experts-a" ? 2 : 4;
      out << "[nodes." << n << "]\nhost = \"127.0.0.1\"\ncontrol_port = " << ports_[i]
          << "\ndata_port = " << ports_[i + 1] << "\n\n";
    }
    if (!a.empty()) out << "[shards.a]\nnode = \"experts-a\"\nexperts = \"" << a << "\"\n\n";
    if (!b.empty()) out << "[shards.b]\nnode = \"experts-b\"\nexperts = \"" << b << "\"\n\n";
    out << extra;
    out.close();
    // Replaced in one rename, as editors save: no node reads half a file.
    std::filesystem::rename(file.string() + ".tmp", file);
  }

  std::unique_ptr<ChildProcess> start_node(const std::string& name,
                                           std::filesystem::path file = {}) {
    if (file.empty()) file = file_;
    return std::make_unique<ChildProcess>(
        MOEFLOW_BINARY, std::vector<std::string>{"serve", "--graph", file.string(), "--node", name},
        temp_.path() / (name + ".log"));
  }

  // 16 requests at once (the golden prompts repeated); every one must give the reference tokens.
  void sixteen_streams() {
    std::vector<std::vector<int32_t>> prompts, expected;
    for (size_t i = 0; prompts.size() < 16; i = (i + 1) % golden_.prompts.size()) {
      prompts.push_back(golden_.prompts[i]);
      expected.push_back(golden_.greedy[i]);
    }
    const auto outcomes = test_support::run_requests(
        system_, node_->pipeline.scheduler,
        test_support::greedy_requests(prompts, golden_.decode_steps + 1), 20s);
    for (size_t i = 0; i < outcomes.size(); ++i) {
      EXPECT_EQ(outcomes[i].error, "") << i;
      EXPECT_EQ(outcomes[i].result.tokens, expected[i]) << i;
    }
  }

  // sixteen_streams() round after round on a thread of its own, until stop_traffic().
  void start_traffic() {
    traffic_ = std::thread([this] {
      while (!stop_) {
        sixteen_streams();
        ++rounds_;
      }
    });
  }
  void wait_rounds(int more) {
    const int until = rounds_ + more;
    while (rounds_ < until) std::this_thread::sleep_for(1ms);
  }
  void stop_traffic() {
    stop_ = true;
    traffic_.join();
  }

  double reloads(const std::string& result) {
    return test_support::metric_sum(node_->registry->exposition(), "moeflow_graph_reloads_total",
                                    {{"result", result}});
  }

  // Polls the reloader until `result` was counted once more (or 20 s pass).
  bool reload_until(const std::string& result) {
    const double before = reloads(result);
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < deadline;) {
      reloader_->poll();
      if (reloads(result) > before) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  test_support::TempDir temp_;
  test_support::GoldenFixture golden_;
  int ports_[6] = {};
  std::filesystem::path file_;
  std::unique_ptr<ChildProcess> node_a_, node_b_;
  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
  std::unique_ptr<RouterNode> node_;
  std::unique_ptr<RouterGraphReloader> reloader_;
  std::vector<std::string> log_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::thread traffic_;
};

TEST_F(LiveReconfig, MovingExpertsBetweenNodesWhile16ClientsStreamKeepsEveryToken) {
  const uint64_t first_graph = graph_hash(node_->graph);
  start_traffic();
  wait_rounds(1);
  // Experts 2 and 3 of every layer move from experts-a to experts-b.
  write_graph("0-1", "2-7");
  const bool applied = reload_until("applied");
  wait_rounds(2);
  stop_traffic();
  ASSERT_TRUE(applied);
  EXPECT_NE(graph_hash(node_->graph), first_graph);
  std::string waiting;
  EXPECT_TRUE(node_->bridge->peers_run(graph_hash(node_->graph), &waiting)) << waiting;
  // Both expert nodes loaded the edit themselves; experts-b loaded its new shard while serving.
  EXPECT_NE(node_a_->log().find("graph reload: serving graph"), std::string::npos);
  EXPECT_NE(node_b_->log().find("loading shard b"), std::string::npos);
  EXPECT_NE(node_b_->log().find("graph reload: serving graph"), std::string::npos);

  // Then every expert moves to experts-b and experts-a is killed: nothing needs it any more, so
  // no request fails over and every token is still the reference.
  write_graph("", "0-7");
  ASSERT_TRUE(reload_until("applied"));
  sixteen_streams();  // the first request with the new graph lets experts-b drop the old one
  node_a_->signal(SIGKILL);
  node_a_->wait();
  sixteen_streams();
  EXPECT_EQ(
      test_support::metric_sum(node_->registry->exposition(), "moeflow_router_failovers_total"),
      0.0);
}

// An expert node leaves the deployment and another joins it while 16 requests at a time stream:
// no process restarts, no request fails over, every token is the reference.
TEST_F(LiveReconfig, ExpertNodesLeaveAndJoinWhileClientsStream) {
  start_traffic();
  wait_rounds(1);
  // experts-a leaves: experts-b takes every expert; then experts-a is stopped.
  write_graph("", "0-7", "", {"experts-b"});
  ASSERT_TRUE(reload_until("applied"));
  EXPECT_EQ(node_->peer_of.count("experts-a"), 0u);
  wait_rounds(1);
  node_a_->signal(SIGKILL);
  node_a_->wait();
  wait_rounds(1);
  const std::string text = node_->registry->exposition();
  EXPECT_EQ(text.find("moeflow_peer_up{peer=\"experts-a\"}"), std::string::npos)
      << "a removed node still shows as a peer";
  EXPECT_NE(node_b_->log().find("graph reload: serving graph"), std::string::npos);

  // experts-a joins again (started with the new graph first) and takes experts 0-3.
  const auto next = temp_.path() / "next.toml";
  write_graph("0-3", "4-7", "", {"experts-a", "experts-b"}, next);
  node_a_ = start_node("experts-a", next);
  std::filesystem::copy_file(next, file_.string() + ".tmp");
  std::filesystem::rename(file_.string() + ".tmp", file_);
  ASSERT_TRUE(reload_until("applied"));
  EXPECT_EQ(node_->peer_of.count("experts-a"), 1u);
  wait_rounds(2);
  stop_traffic();
  std::string waiting;
  EXPECT_TRUE(node_->bridge->peers_run(graph_hash(node_->graph), &waiting)) << waiting;
  EXPECT_EQ(
      test_support::metric_sum(node_->registry->exposition(), "moeflow_router_failovers_total"),
      0.0);
  // experts-a computes its experts again.
  const double before =
      test_support::metric_sum(node_->registry->exposition(), "moeflow_link_messages_total",
                               {{"peer", "experts-a"}, {"channel", "data"}});
  sixteen_streams();
  EXPECT_GT(test_support::metric_sum(node_->registry->exposition(), "moeflow_link_messages_total",
                                     {{"peer", "experts-a"}, {"channel", "data"}}),
            before);
}

// Two edits reach the expert nodes before the router applies the first: the nodes keep serving
// the graph the router still uses until it moves, so no request fails.
TEST_F(LiveReconfig, TwoEditsBeforeTheRouterMovesLoseNothing) {
  auto adoptions = [](ChildProcess& node) {
    const std::string log = node.log();
    size_t count = 0;
    for (size_t at = log.find("graph reload: serving graph"); at != std::string::npos;
         at = log.find("graph reload: serving graph", at + 1))
      ++count;
    return count;
  };
  auto wait_for_adoptions = [&](size_t n) {
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         (adoptions(*node_a_) < n || adoptions(*node_b_) < n) &&
         std::chrono::steady_clock::now() < deadline;)
      std::this_thread::sleep_for(20ms);
    return adoptions(*node_a_) >= n && adoptions(*node_b_) >= n;
  };
  const uint64_t first = graph_hash(node_->graph);
  write_graph("0-1", "2-7");
  ASSERT_TRUE(wait_for_adoptions(1));
  write_graph("0-5", "6-7");
  ASSERT_TRUE(wait_for_adoptions(2));
  // The router has not looked at the file yet: it still routes for the first graph.
  EXPECT_EQ(graph_hash(node_->graph), first);
  sixteen_streams();
  ASSERT_TRUE(reload_until("applied"));
  EXPECT_NE(graph_hash(node_->graph), first);
  sixteen_streams();
  EXPECT_EQ(
      test_support::metric_sum(node_->registry->exposition(), "moeflow_router_failovers_total"),
      0.0);
}

TEST_F(LiveReconfig, ABrokenEditChangesNothingAndIsReported) {
  const uint64_t before = graph_hash(node_->graph);
  {
    std::ofstream out(file_);
    out << "[model\npath = \"x\"\n";  // a TOML syntax error
  }
  ASSERT_TRUE(reload_until("refused"));
  EXPECT_EQ(graph_hash(node_->graph), before);
  sixteen_streams();
  // An unknown expert id is refused the same way.
  write_graph("0-3", "4-9");
  ASSERT_TRUE(reload_until("refused"));
  EXPECT_EQ(graph_hash(node_->graph), before);
  bool named = false;
  for (const auto& line : log_)
    named |= line.find("graph reload refused") != std::string::npos &&
             line.find("9") != std::string::npos;
  EXPECT_TRUE(named) << "the refusal names the bad expert";
  sixteen_streams();
  // A change that needs a restart (another API port) is refused with the reason.
  write_graph("0-3", "4-7", "[api]\nport = 8123\n");
  ASSERT_TRUE(reload_until("refused"));
  bool reason = false;
  for (const auto& line : log_) reason |= line.find("api.port") != std::string::npos;
  EXPECT_TRUE(reason);
  sixteen_streams();
}

}  // namespace
}  // namespace moeflow
