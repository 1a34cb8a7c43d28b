// The scheduler's continuous batching: chunked prefill, streaming, cancellation, limits.
#include <gtest/gtest.h>

#include <chrono>

#include "actors/actor_system_setup.h"
#include "actors/local_pipeline.h"
#include "tests/support/golden.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

class Scheduler : public ::testing::Test {
 protected:
  void start(SchedulerOptions options) {
    golden_ = test_support::load_golden("qwen2_moe");
    LocalPipelineOptions opts;
    opts.scheduler = options;
    pipeline_ = spawn_local_pipeline(system_, golden_.dir, {{}}, opts);
  }
  void TearDown() override { stop_pipeline(pipeline_); }

  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
  test_support::GoldenFixture golden_;
  LocalPipeline pipeline_;
};

// Prompts fed three tokens per step, at most two sequences at a time: still the reference.
TEST_F(Scheduler, ChunkedPrefillAndABatchLimitKeepReferenceTokens) {
  SchedulerOptions o;
  o.prefill_chunk = 3;
  o.max_running = 2;
  start(o);
  const auto outcomes = test_support::run_requests(
      system_, pipeline_.scheduler,
      test_support::greedy_requests(golden_.prompts, golden_.decode_steps + 1));
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].error, "");
    EXPECT_EQ(outcomes[i].result.tokens, golden_.greedy[i]) << i;
  }
}

TEST_F(Scheduler, StreamedTokensArriveOneByOneAndEqualTheResult) {
  start({});
  caf::scoped_actor self{system_};
  auto req = std::make_shared<GenerationRequest>();
  req->prompt = golden_.prompts[1];
  req->max_tokens = golden_.decode_steps + 1;
  self->send(pipeline_.scheduler, stream_atom::value, uint64_t{42}, GenerationRequestPtr(req),
             caf::actor_cast<caf::actor>(self));
  std::vector<int32_t> streamed;
  bool done = false;
  GenerationResult result;
  while (!done) {
    self->receive(
        [&](token_atom, uint64_t id, int32_t token) {
          EXPECT_EQ(id, 42u);
          streamed.push_back(token);
        },
        [&](done_atom, uint64_t id, const GenerationResultPtr& r) {
          EXPECT_EQ(id, 42u);
          result = *r;
          done = true;
        },
        [&](fail_atom, uint64_t, const std::string& why) {
          ADD_FAILURE() << why;
          done = true;
        },
        caf::after(10s) >>
            [&] {
              ADD_FAILURE() << "timed out";
              done = true;
            });
  }
  EXPECT_EQ(streamed, golden_.greedy[1]);
  EXPECT_EQ(result.tokens, streamed);
  EXPECT_EQ(result.finish_reason, "length");
}

TEST_F(Scheduler, CancelledStreamStopsAndOthersContinue) {
  start({});
  caf::scoped_actor self{system_};
  auto req = std::make_shared<GenerationRequest>();
  req->prompt = golden_.prompts[0];
  req->max_tokens = 400;
  req->stop_at_eos = false;
  self->send(pipeline_.scheduler, stream_atom::value, uint64_t{7}, GenerationRequestPtr(req),
             caf::actor_cast<caf::actor>(self));
  int tokens = 0;
  self->receive([&](token_atom, uint64_t, int32_t) { ++tokens; });
  self->send(pipeline_.scheduler, cancel_atom::value, uint64_t{7});
  bool quiet = false, completed = false;
  // Tokens already in flight may still arrive; then nothing, and never a completion.
  self->receive_while([&] { return !quiet && !completed; })(
      [&](token_atom, uint64_t, int32_t) { ++tokens; },
      [&](done_atom, uint64_t, const GenerationResultPtr&) { completed = true; },
      caf::after(300ms) >> [&] { quiet = true; });
  EXPECT_FALSE(completed);
  EXPECT_LT(tokens, 200) << "the request ran on after its cancel";
  const auto outcomes = test_support::run_requests(
      system_, pipeline_.scheduler, test_support::greedy_requests({golden_.prompts[2]}, 7));
  EXPECT_EQ(outcomes[0].result.tokens, golden_.greedy[2]);
}

TEST_F(Scheduler, FullQueueRefusesAtOnceWithOverloaded) {
  SchedulerOptions o;
  o.max_running = 1;
  o.max_waiting = 1;
  start(o);
  auto requests = test_support::greedy_requests(
      {golden_.prompts[0], golden_.prompts[1], golden_.prompts[2]}, 5);
  const auto outcomes = test_support::run_requests(system_, pipeline_.scheduler, requests);
  int refused = 0, served = 0;
  for (const auto& o : outcomes) {
    if (o.error.empty()) {
      ++served;
    } else {
      EXPECT_EQ(o.error.rfind(kOverloadedPrefix, 0), 0u) << o.error;
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_GE(served, 1);
}

TEST_F(Scheduler, RequestsBeyondTheContextOrBudgetAreRefusedWithTheNumbers) {
  SchedulerOptions o;
  o.kv_budget_tokens = 100;
  start(o);
  auto too_long = test_support::greedy_requests({golden_.prompts[0]}, 600);
  auto over_budget = test_support::greedy_requests({golden_.prompts[0]}, 200);
  const auto a = test_support::run_requests(system_, pipeline_.scheduler, too_long);
  const auto b = test_support::run_requests(system_, pipeline_.scheduler, over_budget);
  EXPECT_NE(a[0].error.find("exceeds the context length of 512"), std::string::npos) << a[0].error;
  EXPECT_NE(b[0].error.find("exceeds the KV-cache budget of 100"), std::string::npos) << b[0].error;
}

}  // namespace
}  // namespace moeflow
