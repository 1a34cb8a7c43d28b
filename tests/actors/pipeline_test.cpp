// The actor pipeline in one process (scheduler -> router -> expert shards) gives exactly the
// reference greedy tokens, with the experts split over several shards and requests batched.
#include <gtest/gtest.h>

#include <chrono>

#include "actors/actor_system_setup.h"
#include "actors/expert_shard_actor.h"
#include "actors/local_pipeline.h"
#include "core/error.h"
#include "tests/support/golden.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

class ActorPipeline : public ::testing::TestWithParam<std::string> {
 protected:
  ActorSystemConfig cfg_;
  caf::actor_system system_{cfg_};
};

// All prompts at once through the scheduler: they share router steps.
std::vector<GenerationResult> generate_all(caf::actor_system& system, const scheduler_actor& s,
                                           const test_support::GoldenFixture& g) {
  std::vector<GenerationResult> results;
  for (const auto& o : test_support::run_requests(
           system, s, test_support::greedy_requests(g.prompts, g.decode_steps + 1))) {
    EXPECT_EQ(o.error, "");
    results.push_back(o.result);
  }
  return results;
}

TEST_P(ActorPipeline, TwoShardsSplittingExpertsGiveReferenceGreedyTokens) {
  const auto g = test_support::load_golden(GetParam());
  const auto p = spawn_local_pipeline(system_, g.dir,
                                      {[](int64_t, int64_t e) { return e % 2 == 0; },
                                       [](int64_t, int64_t e) { return e % 2 == 1; }});
  const auto results = generate_all(system_, p.scheduler, g);
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].tokens, g.greedy[i]) << i;
  stop_pipeline(p);
}

TEST_P(ActorPipeline, ShardsSplitByLayerAndOverlappingReplicas) {
  const auto g = test_support::load_golden(GetParam());
  const auto p = spawn_local_pipeline(
      system_, g.dir,
      {[](int64_t l, int64_t) { return l == 0; }, [](int64_t l, int64_t) { return l != 0; },
       [](int64_t, int64_t e) { return e < 3; }});
  const auto results = generate_all(system_, p.scheduler, g);
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].tokens, g.greedy[i]) << i;
  stop_pipeline(p);
}

INSTANTIATE_TEST_SUITE_P(Families, ActorPipeline,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek"),
                         [](const auto& info) { return info.param; });

TEST(ActorPipelineErrors, MissingExpertHolderIsRefusedAtStart) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  EXPECT_THROW(spawn_local_pipeline(system, test_support::golden_dir("mixtral"),
                                    {[](int64_t, int64_t e) { return e != 5; }}),
               Error);
}

TEST(ActorPipelineErrors, BadRequestGetsAnErrorAndOthersStillRun) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  const auto g = test_support::load_golden("mixtral");
  const auto p = spawn_local_pipeline(system, g.dir, {{}});
  caf::scoped_actor self{system};
  auto bad = std::make_shared<GenerationRequest>();
  bad->prompt = {1, 99999};
  std::string error;
  self->request(p.scheduler, 10s, generate_atom::value, GenerationRequestPtr(bad))
      .receive([](const GenerationResultPtr&) { ADD_FAILURE() << "expected an error"; },
               [&](caf::error& err) { error = describe(err); });
  EXPECT_NE(error.find("outside the vocabulary"), std::string::npos) << error;
  auto good = std::make_shared<GenerationRequest>();
  good->prompt = g.prompts[0];
  good->max_tokens = 3;
  self->request(p.scheduler, 10s, generate_atom::value, GenerationRequestPtr(good))
      .receive(
          [&](const GenerationResultPtr& r) {
            EXPECT_EQ(r->tokens,
                      std::vector<int32_t>(g.greedy[0].begin(), g.greedy[0].begin() + 3));
          },
          [](caf::error& err) { ADD_FAILURE() << describe(err); });
  stop_pipeline(p);
}

// A shard that never answers: the request ends with a timeout error instead of hanging.
TEST(ActorPipelineErrors, SilentShardTimesOutTheStep) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  const auto g = test_support::load_golden("mixtral");
  LocalPipelineOptions opts;
  opts.router.shard_timeout = 300ms;
  auto router_model = std::shared_ptr<RouterModel>(RouterModel::load(g.dir, "auto", {}));
  auto silent = system.spawn([]() -> expert_shard_actor::behavior_type {
    return {[](run_atom, const TokenBatchPtr&) -> caf::result<ExpertOutputPtr> {
      return caf::delegated<ExpertOutputPtr>();  // never replies
    }};
  });
  const ModelConfig model_cfg = router_model->config();
  auto owners = owners_from_selections(model_cfg, {{}});
  auto router = system.spawn(make_router, router_model, std::vector<expert_shard_actor>{silent},
                             owners, opts.router);
  auto scheduler = system.spawn(make_scheduler, router, model_cfg, SchedulerOptions{});
  caf::scoped_actor self{system};
  auto req = std::make_shared<GenerationRequest>();
  req->prompt = g.prompts[0];
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  self->request(scheduler, 10s, generate_atom::value, GenerationRequestPtr(req))
      .receive([](const GenerationResultPtr&) { ADD_FAILURE() << "expected an error"; },
               [&](caf::error& err) { error = describe(err); });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(error.find("expert shard 0 failed"), std::string::npos) << error;
  EXPECT_NE(error.find("timed out"), std::string::npos) << error;
  for (const caf::actor& a :
       {caf::actor_cast<caf::actor>(scheduler), caf::actor_cast<caf::actor>(router),
        caf::actor_cast<caf::actor>(silent)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace moeflow
