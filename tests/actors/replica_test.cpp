// Experts held by several shards: pairs spread over the replicas, a killed replica's pairs go to
// the survivor within the same step (no request lost or changed), a placement update takes
// effect between steps, and a pair whose only holder is gone fails its step but not the router.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/local_pipeline.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;
using test_support::metric_sum;

class Replicas : public ::testing::Test {
 protected:
  void start(std::vector<ExpertSelection> shards) {
    golden_ = test_support::load_golden("mixtral");
    LocalPipelineOptions options;
    options.registry = registry_;
    options.router.failed_shard_retry = 60s;  // a killed actor stays dead
    pipeline_ = spawn_local_pipeline(system_, golden_.dir, std::move(shards), options);
  }
  void TearDown() override { stop_pipeline(pipeline_); }

  // Every golden prompt `copies` times; every result must be the reference continuation.
  void expect_reference_tokens(int copies = 1) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<int32_t>> expected;
    for (int c = 0; c < copies; ++c)
      for (size_t i = 0; i < golden_.prompts.size(); ++i) {
        prompts.push_back(golden_.prompts[i]);
        expected.push_back(golden_.greedy[i]);
      }
    const auto outcomes = test_support::run_requests(
        system_, pipeline_.scheduler,
        test_support::greedy_requests(prompts, golden_.decode_steps + 1));
    for (size_t i = 0; i < outcomes.size(); ++i) {
      EXPECT_EQ(outcomes[i].error, "") << i;
      EXPECT_EQ(outcomes[i].result.tokens, expected[i]) << i;
    }
  }
  double pairs(const std::string& shard) {
    return metric_sum(registry_->exposition(), "moeflow_shard_pairs_total", {{"shard", shard}});
  }
  double failovers() {
    return metric_sum(registry_->exposition(), "moeflow_router_failovers_total");
  }

  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
  std::shared_ptr<metrics::Registry> registry_ = std::make_shared<metrics::Registry>();
  test_support::GoldenFixture golden_;
  LocalPipeline pipeline_;
};

TEST_F(Replicas, PairsOfAReplicatedExpertSpreadOverItsReplicas) {
  start({{}, {}});  // two shards, each with every expert
  expect_reference_tokens(4);
  const double a = pairs("shard0"), b = pairs("shard1");
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  // Least-assigned-first splits each layer's pairs within one pair per expert.
  EXPECT_LT(std::abs(a - b) / (a + b), 0.25) << a << " vs " << b;
}

TEST_F(Replicas, AKilledReplicaMidTrafficLosesNoRequest) {
  start({{}, {}});
  std::atomic<bool> stop{false};
  int rounds = 0;
  std::thread traffic([&] {
    while (!stop) {
      expect_reference_tokens(2);
      ++rounds;
    }
  });
  while (pairs("shard1") == 0) std::this_thread::sleep_for(1ms);
  caf::anon_send_exit(pipeline_.shards[1], caf::exit_reason::kill);
  caf::scoped_actor{system_}->wait_for(pipeline_.shards[1]);
  const double killed_at = pairs("shard1");  // a batch it was running when killed counts
  std::this_thread::sleep_for(300ms);
  stop = true;
  traffic.join();
  EXPECT_GE(rounds, 2);
  EXPECT_GE(failovers(), 1.0);
  EXPECT_EQ(pairs("shard1"), killed_at);  // the dead replica got nothing after the kill
  EXPECT_GT(pairs("shard0"), 0);
}

TEST_F(Replicas, APlacementUpdateRetiresAReplicaBetweenSteps) {
  start({{}, {}});
  expect_reference_tokens();
  auto update = std::make_shared<PlacementUpdate>();
  update->shards = pipeline_.shards;
  update->owners =
      owners_from_selections(pipeline_.config, {{}, [](int64_t, int64_t) { return false; }});
  caf::anon_send(pipeline_.router, placement_atom::value, PlacementUpdatePtr(update));
  const double before = pairs("shard1");
  expect_reference_tokens(2);
  EXPECT_EQ(pairs("shard1"), before);
}

TEST_F(Replicas, AnExpertWithNoLiveHolderFailsItsStepButNotTheRouter) {
  start({[](int64_t, int64_t e) { return e < 4; }, [](int64_t, int64_t e) { return e >= 4; }});
  caf::anon_send_exit(pipeline_.shards[1], caf::exit_reason::kill);
  const auto outcomes = test_support::run_requests(
      system_, pipeline_.scheduler, test_support::greedy_requests({golden_.prompts[0]}, 3));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_NE(outcomes[0].error.find("expert shard 1 failed"), std::string::npos)
      << outcomes[0].error;
  // The router still answers: the next request fails the same way, promptly.
  const auto again = test_support::run_requests(
      system_, pipeline_.scheduler, test_support::greedy_requests({golden_.prompts[1]}, 3), 5s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].error.find("expert shard 1 failed"), std::string::npos) << again[0].error;
}

}  // namespace
}  // namespace moeflow
