// Three processes on loopback: this test process is the router node (scheduler, router, bridge)
// and two `moeflow serve` child processes are the expert nodes, each holding half the experts.
// Real ZeroMQ sockets, real processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "actors/actor_system_setup.h"
#include "actors/router_node.h"
#include "core/child_process.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"
#include "tests/support/temp_dir.h"
#include "transport/endpoint.h"
#include "transport/wire_format.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

struct Ports {
  int router_control, router_data, a_control, a_data, b_control, b_data;
};

// Each expert node holds half of the experts, or, with `replicated`, every expert (so that each
// expert has a replica on both nodes).
std::string write_graph(const std::filesystem::path& dir, const std::filesystem::path& model,
                        int experts, const Ports& p, bool replicated = false) {
  const int half = replicated ? experts : experts / 2;
  const int b_first = replicated ? 0 : half;
  std::ofstream out(dir / "graph.toml");
  out << "[model]\npath = \"" << model.string() << "\"\n\n"
      << "[timeouts]\nheartbeat_ms = 100\npeer_down_ms = 600\nrequest_ms = 3000\n\n"
      << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << p.router_control
      << "\ndata_port = " << p.router_data << "\nrouter = true\n\n"
      << "[nodes.experts-a]\nhost = \"127.0.0.1\"\ncontrol_port = " << p.a_control
      << "\ndata_port = " << p.a_data << "\n\n"
      << "[nodes.experts-b]\nhost = \"127.0.0.1\"\ncontrol_port = " << p.b_control
      << "\ndata_port = " << p.b_data << "\n\n"
      << "[shards.a]\nnode = \"experts-a\"\nexperts = \"0-" << half - 1 << "\"\n\n"
      << "[shards.b]\nnode = \"experts-b\"\nexperts = \"" << b_first << "-" << experts - 1
      << "\"\n";
  return (dir / "graph.toml").string();
}

class ThreeNodes : public ::testing::Test {
 protected:
  void start(const std::string& family, bool replicated = false) {
    golden_ = test_support::load_golden(family);
    const auto cfg = nlohmann::json::parse(std::ifstream(golden_.dir / "config.json"));
    int experts = 0;
    for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts"})
      if (cfg.contains(key)) experts = cfg[key].get<int>();
    ports_ = {transport::free_loopback_port(), transport::free_loopback_port(),
              transport::free_loopback_port(), transport::free_loopback_port(),
              transport::free_loopback_port(), transport::free_loopback_port()};
    graph_file_ = write_graph(temp_.path(), golden_.dir, experts, ports_, replicated);
    node_a_ = start_node("experts-a");
    node_b_ = start_node("experts-b");
    node_ = start_router_node(system_, load_graph(graph_file_), 10s);
  }

  std::unique_ptr<ChildProcess> start_node(const std::string& name) {
    return std::make_unique<ChildProcess>(
        MOEFLOW_BINARY, std::vector<std::string>{"serve", "--graph", graph_file_, "--node", name},
        temp_.path() / (name + ".log"));
  }

  void expect_reference_tokens(std::chrono::milliseconds timeout = 30s) {
    const auto outcomes = test_support::run_requests(
        system_, node_->pipeline.scheduler,
        test_support::greedy_requests(golden_.prompts, golden_.decode_steps + 1), timeout);
    for (size_t i = 0; i < outcomes.size(); ++i) {
      EXPECT_EQ(outcomes[i].error, "") << i;
      EXPECT_EQ(outcomes[i].result.tokens, golden_.greedy[i]) << i;
    }
  }

  void TearDown() override {
    node_.reset();
    if (HasFailure()) {
      if (node_a_) std::cerr << "experts-a log:\n" << node_a_->log();
      if (node_b_) std::cerr << "experts-b log:\n" << node_b_->log();
    }
  }

  test_support::TempDir temp_;
  test_support::GoldenFixture golden_;
  Ports ports_{};
  std::string graph_file_;
  std::unique_ptr<ChildProcess> node_a_, node_b_;
  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
  std::unique_ptr<RouterNode> node_;
};

TEST_F(ThreeNodes, MixtralGivesReferenceGreedyTokens) {
  start("mixtral");
  expect_reference_tokens();
}

TEST_F(ThreeNodes, Qwen2MoeWithDenseLayerAndSharedExpertGivesReferenceGreedyTokens) {
  start("qwen2_moe");
  expect_reference_tokens();
}

TEST_F(ThreeNodes, DeepseekGivesReferenceGreedyTokens) {
  start("deepseek");
  expect_reference_tokens();
}

// Speculation turned on live: draft and verify steps go to the expert nodes' shards over ZeroMQ
// (the drafter's top-1 as fewer pairs), and greedy output stays the reference.
TEST_F(ThreeNodes, SpeculativeDecodingThroughRemoteShardsGivesReferenceTokens) {
  start("mixtral");
  auto settings = std::make_shared<SpeculativeSettings>();
  settings->enabled = true;
  settings->options.draft.top_k = 1;
  settings->options.control.adaptive = false;
  settings->options.control.gamma = 3;
  caf::scoped_actor self{system_};
  self->send(node_->pipeline.scheduler, configure_atom::value, SpeculativeSettingsPtr(settings));
  expect_reference_tokens();
  const std::string text = node_->registry->exposition();
  EXPECT_GT(test_support::metric_sum(text, "moeflow_speculative_drafted_tokens_total"), 0.0);
  EXPECT_EQ(test_support::metric_sample(text, "moeflow_speculative_enabled"), 1.0);
}

// SIGKILL an expert node while a request needs it: the request ends with an error naming the
// node within a bounded time; the router keeps running; once the node is back, new requests
// succeed without restarting anything else.
TEST_F(ThreeNodes, KilledExpertNodeFailsItsRequestsAndRecoversWhenBack) {
  start("mixtral");
  GenerationRequest longer;
  longer.prompt = golden_.prompts[0];
  longer.max_tokens = 400;
  longer.stop_at_eos = false;
  std::vector<test_support::Outcome> outcomes;
  const auto started = std::chrono::steady_clock::now();
  std::thread client([&] {
    outcomes = test_support::run_requests(system_, node_->pipeline.scheduler, {longer}, 20s);
  });
  std::this_thread::sleep_for(20ms);
  node_b_->signal(SIGKILL);
  node_b_->wait();
  client.join();
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_NE(outcomes[0].error.find("experts-b"), std::string::npos) << outcomes[0].error;
  EXPECT_LT(took, 8s);

  // While it is down, requests fail fast with the reason.
  auto down = test_support::run_requests(system_, node_->pipeline.scheduler,
                                         test_support::greedy_requests({golden_.prompts[1]}, 3));
  EXPECT_NE(down[0].error.find("experts-b"), std::string::npos) << down[0].error;

  node_b_ = start_node("experts-b");
  std::string why;
  ASSERT_TRUE(node_->bridge->wait_until_up(10s, &why)) << why;
  expect_reference_tokens();
}

// Both expert nodes hold every expert. SIGKILL one while requests stream: the router sends the
// pairs that were waiting on it to the other replica, and every request still ends with the
// reference tokens.
TEST_F(ThreeNodes, KilledReplicaNodeMidTrafficLosesNoRequest) {
  start("mixtral", /*replicated=*/true);
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::thread traffic([&] {
    while (!stop) {
      expect_reference_tokens(10s);
      ++rounds;
    }
  });
  while (rounds < 2) std::this_thread::sleep_for(1ms);
  node_b_->signal(SIGKILL);
  node_b_->wait();
  const int rounds_at_kill = rounds;
  // peer_down_ms is 600: requests in flight to the dead node fail then and go to experts-a.
  std::this_thread::sleep_for(1500ms);
  stop = true;
  traffic.join();
  EXPECT_GE(rounds - rounds_at_kill, 2);
  const std::string metrics = node_->registry->exposition();
  EXPECT_GE(test_support::metric_sum(metrics, "moeflow_router_failovers_total"), 1.0) << metrics;
  EXPECT_EQ(test_support::metric_sample(metrics, R"(moeflow_peer_up{peer="experts-b"})"), 0.0);
}

// Garbage, truncated, wrong-version and oversized frames to both sockets of an expert node are
// dropped and logged; the node keeps serving.
TEST_F(ThreeNodes, BadFramesAreDroppedAndTheNodeKeepsServing) {
  start("mixtral");
  zmq::context_t ctx(1);
  auto heartbeat = transport::encode_heartbeat({});
  std::string wrong_version(static_cast<const char*>(heartbeat[0].data()), heartbeat[0].size());
  wrong_version[4] = 99;
  const std::vector<std::string> bad = {"garbage", std::string(10, '\x01'), wrong_version,
                                        std::string(200, 'M') /* MOEF-less 200 bytes */};
  std::vector<zmq::socket_t> sockets;  // kept open until the frames have surely gone out
  for (int port : {ports_.a_control, ports_.a_data}) {
    zmq::socket_t& s = sockets.emplace_back(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect("tcp://127.0.0.1:" + std::to_string(port));
    for (const auto& frame : bad) s.send(zmq::buffer(frame), zmq::send_flags::none);
    // A header that claims a huge batch, with no tensor frames behind it.
    auto request = transport::encode_expert_request(
        1, TokenBatch{0, 64, 2, std::vector<float>(64), {1}, {0}, {0, 1}, {0.5f, 0.5f}});
    std::vector<zmq::message_t> truncated;
    truncated.push_back(std::move(request[0]));
    zmq::send_multipart(s, truncated);
    // Over the node's ZMQ_MAXMSGSIZE: ZeroMQ drops the connection that sent it, nothing else.
    s.send(zmq::buffer(std::string(8 << 20, 'x')), zmq::send_flags::none);
  }
  std::this_thread::sleep_for(300ms);
  expect_reference_tokens();
  const std::string log = node_a_->log();
  EXPECT_NE(log.find("dropped a control frame"), std::string::npos) << log;
  EXPECT_NE(log.find("dropped a data frame"), std::string::npos) << log;
  EXPECT_TRUE(node_a_->running());
  RecordProperty("experts_a_log", log);
}

TEST(ThreeNodesStartup, UnreachableNodeIsNamedAtStart) {
  test_support::TempDir temp;
  const Ports p{transport::free_loopback_port(), transport::free_loopback_port(),
                transport::free_loopback_port(), transport::free_loopback_port(),
                transport::free_loopback_port(), transport::free_loopback_port()};
  const auto file = write_graph(temp.path(), test_support::golden_dir("mixtral"), 8, p);
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  try {
    start_router_node(system, load_graph(file), 500ms);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("experts-a"), std::string::npos) << what;
    EXPECT_NE(what.find("experts-b"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace moeflow

namespace moeflow {
namespace {

// A node started from a different graph refuses the handshake, and the router names why.
TEST(ThreeNodesStartup, GraphMismatchIsRefusedByName) {
  test_support::TempDir temp;
  const Ports p{transport::free_loopback_port(), transport::free_loopback_port(),
                transport::free_loopback_port(), transport::free_loopback_port(),
                transport::free_loopback_port(), transport::free_loopback_port()};
  const auto file = write_graph(temp.path(), test_support::golden_dir("mixtral"), 8, p);
  // The same topology with another request timeout: another graph hash.
  std::filesystem::create_directories(temp.path() / "other");
  const auto other = write_graph(temp.path() / "other", test_support::golden_dir("mixtral"), 8, p);
  { std::ofstream(other, std::ios::app) << "\n[api]\nport = 8123\n"; }
  ChildProcess a(MOEFLOW_BINARY, {"serve", "--graph", other, "--node", "experts-a"},
                 temp.path() / "a.log");
  ChildProcess b(MOEFLOW_BINARY, {"serve", "--graph", file, "--node", "experts-b"},
                 temp.path() / "b.log");
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  try {
    start_router_node(system, load_graph(file), 3s);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("experts-a"), std::string::npos) << what;
    EXPECT_NE(what.find("graph hash"), std::string::npos) << what;
    EXPECT_EQ(what.find("experts-b"), std::string::npos) << what;  // b runs our graph
  }
}

// The committed example, as an operator runs it: one `moeflow` process per node.
TEST(CommittedConfigs, ThreeNodeExampleRunsAsThreeProcesses) {
  test_support::TempDir temp;
  const std::string graph = std::string(MOEFLOW_SOURCE_DIR) + "/configs/three-node.toml";
  ChildProcess a(MOEFLOW_BINARY, {"serve", "--graph", graph, "--node", "experts-a"},
                 temp.path() / "a.log");
  ChildProcess b(MOEFLOW_BINARY, {"serve", "--graph", graph, "--node", "experts-b"},
                 temp.path() / "b.log");
  const auto g = test_support::load_golden("mixtral");
  std::string prompt, want;
  for (size_t i = 0; i < g.prompts[2].size(); ++i)
    prompt += (i ? "," : "") + std::to_string(g.prompts[2][i]);
  for (size_t i = 0; i < g.greedy[2].size(); ++i)
    want += (i ? "," : "") + std::to_string(g.greedy[2][i]);
  ChildProcess router(MOEFLOW_BINARY,
                      {"generate", "--quiet", "--graph", graph, "--prompt-ids", prompt,
                       "--max-tokens", std::to_string(g.greedy[2].size())},
                      temp.path() / "router.log");
  EXPECT_EQ(router.wait(), 0) << router.log() << a.log() << b.log();
  EXPECT_NE(router.log().find(want + "\n"), std::string::npos) << router.log();
}

}  // namespace
}  // namespace moeflow
