// Self-speculative decoding through the actors: scheduler -> speculator -> router -> expert
// shards. Greedy output must be the plain greedy output token for token, whatever γ, batching,
// arrival times and limits; streams, cancellation, KV release and the metrics are checked too.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "actors/actor_system_setup.h"
#include "actors/local_pipeline.h"
#include "core/error.h"
#include "model/sampler.h"
#include "tests/support/golden.h"
#include "tests/support/metrics_text.h"
#include "tests/support/scheduler_client.h"

namespace moeflow {
namespace {

using namespace std::chrono_literals;

SpeculativeSettings fixed_gamma(int64_t gamma, int64_t draft_top_k = 1) {
  SpeculativeSettings s;
  s.enabled = true;
  s.options.draft.top_k = draft_top_k;
  s.options.control.adaptive = false;
  s.options.control.gamma = gamma;
  return s;
}

void configure(caf::actor_system& system, const LocalPipeline& p, const SpeculativeSettings& s) {
  caf::scoped_actor self{system};
  self->send(p.scheduler, configure_atom::value,
             SpeculativeSettingsPtr(std::make_shared<SpeculativeSettings>(s)));
}

// Stops the pipeline and waits until every actor is gone, so that the router's cache can be read
// (every release sent before has been handled: CAF delivers each sender's messages in order).
void stop_and_wait(caf::actor_system& system, const LocalPipeline& p) {
  caf::scoped_actor self{system};
  for (const caf::actor& a :
       {caf::actor_cast<caf::actor>(p.scheduler), caf::actor_cast<caf::actor>(p.speculator),
        caf::actor_cast<caf::actor>(p.router)}) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }
}

// Stops `p` once idle (stop_and_wait) and checks that no KV id, the full model's or a drafter's,
// is left in its router's cache; then releases the pipeline.
void expect_caches_released(caf::actor_system& system, const LocalPipeline& p) {
  stop_and_wait(system, p);
  EXPECT_EQ(p.router_model->cache().sequence_count(), 0u) << "a KV id was not released";
  stop_pipeline(p);
}

// What the plain server (no speculator) answers to `requests` on `model`.
std::vector<test_support::Outcome> plain_outcomes(caf::actor_system& system,
                                                  const std::filesystem::path& model,
                                                  const std::vector<GenerationRequest>& requests) {
  const LocalPipeline plain = spawn_local_pipeline(system, model, {{}});
  auto outcomes = test_support::run_requests(system, plain.scheduler, requests);
  stop_pipeline(plain);
  return outcomes;
}

// Streams one request; the tokens in the order they came.
struct Stream {
  std::vector<int32_t> tokens;
  GenerationResult result;
  std::string error;
};

// Greedy speculative decoding gives the golden (Hugging Face) greedy tokens for every family, with
// all prompts in one batch (they finish at different rounds), several γ and limits below the
// reference length; γ changes live between runs.
class SpeculativeServingGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(SpeculativeServingGolden, GreedyTokensEqualTheReferenceForEveryGamma) {
  const auto golden = test_support::load_golden(GetParam());
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  LocalPipelineOptions opts;
  opts.registry = std::make_shared<metrics::Registry>();
  opts.speculative = fixed_gamma(1);
  // Two shards splitting the experts: the draft budget reaches both as fewer pairs.
  const LocalPipeline p = spawn_local_pipeline(system, golden.dir,
                                               {[](int64_t, int64_t e) { return e % 2 == 0; },
                                                [](int64_t, int64_t e) { return e % 2 == 1; }},
                                               opts);
  for (int64_t gamma : {1, 3, 8}) {
    configure(system, p, fixed_gamma(gamma));
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < golden.prompts.size(); ++i) {
      GenerationRequest r;
      r.prompt = golden.prompts[i];
      r.max_tokens = golden.decode_steps + 1 - static_cast<int64_t>(i % 3);  // different limits
      requests.push_back(r);
    }
    const auto outcomes = test_support::run_requests(system, p.scheduler, requests);
    for (size_t i = 0; i < outcomes.size(); ++i) {
      ASSERT_EQ(outcomes[i].error, "") << "gamma " << gamma << " prompt " << i;
      const std::vector<int32_t> want(golden.greedy[i].begin(),
                                      golden.greedy[i].begin() + requests[i].max_tokens);
      EXPECT_EQ(outcomes[i].result.tokens, want) << "gamma " << gamma << " prompt " << i;
    }
  }
  const std::string text = opts.registry->exposition();
  EXPECT_GT(test_support::metric_sum(text, "moeflow_speculative_drafted_tokens_total"), 0.0);
  EXPECT_GT(
      test_support::metric_sum(text, "moeflow_speculative_decisions_total", {{"reason", "fixed"}}),
      0.0);
  expect_caches_released(system, p);
}

INSTANTIATE_TEST_SUITE_P(Families, SpeculativeServingGolden,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek"));

// The demo model, longer generations: the speculative server against the plain one, with
// requests joining while others run, different prompt lengths and limits, and the adaptive
// controller; the metrics move.
class SpeculativeServingDemo : public ::testing::Test {
 protected:
  static std::filesystem::path demo() {
    return std::filesystem::path(MOEFLOW_SOURCE_DIR) / "models/demo";
  }

  std::vector<GenerationRequest> requests() const {
    const std::vector<std::vector<int32_t>> prompts = {
        {1, 15, 27, 3}, {1}, {1, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 7}, {1, 99, 5}};
    std::vector<GenerationRequest> out;
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationRequest r;
      r.prompt = prompts[i];
      r.max_tokens = 12 + 7 * static_cast<int64_t>(i);
      r.stop_at_eos = i % 2 == 0;
      out.push_back(r);
    }
    return out;
  }

  // Sends the requests two at a time: the second pair joins once the first pair's first tokens
  // have streamed.
  std::vector<Stream> stream_all(caf::actor_system& system, const scheduler_actor& scheduler) {
    const auto reqs = requests();
    std::vector<Stream> out(reqs.size());
    caf::scoped_actor self{system};
    const auto send = [&](size_t i) {
      self->send(scheduler, stream_atom::value, uint64_t{i},
                 GenerationRequestPtr(std::make_shared<GenerationRequest>(reqs[i])),
                 caf::actor_cast<caf::actor>(self));
    };
    send(0);
    send(1);
    size_t finished = 0, sent = 2;
    while (finished < reqs.size()) {
      bool timed_out = false;
      self->receive(
          [&](token_atom, uint64_t id, int32_t token) {
            out[id].tokens.push_back(token);
            if (sent < reqs.size() && out[0].tokens.size() >= 2) send(sent++);
          },
          [&](done_atom, uint64_t id, const GenerationResultPtr& r) {
            out[id].result = *r;
            ++finished;
          },
          [&](fail_atom, uint64_t id, const std::string& why) {
            out[id].error = why;
            ++finished;
          },
          caf::after(60s) >> [&] { timed_out = true; });
      if (timed_out) {
        ADD_FAILURE() << "timed out";
        break;
      }
      if (finished == sent && sent < reqs.size()) send(sent++);
    }
    return out;
  }
};

TEST_F(SpeculativeServingDemo, StreamsEqualPlainDecodingWithRequestsJoiningMidRun) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  const LocalPipeline plain = spawn_local_pipeline(system, demo(), {{}});
  const std::vector<Stream> want = stream_all(system, plain.scheduler);
  stop_pipeline(plain);

  for (int64_t gamma : {2, 5}) {
    LocalPipelineOptions opts;
    opts.registry = std::make_shared<metrics::Registry>();
    opts.speculative = fixed_gamma(gamma);
    const LocalPipeline p = spawn_local_pipeline(system, demo(), {{}}, opts);
    const std::vector<Stream> got = stream_all(system, p.scheduler);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].error, "") << i;
      EXPECT_EQ(got[i].tokens, want[i].tokens) << "gamma " << gamma << " request " << i;
      EXPECT_EQ(got[i].result.tokens, got[i].tokens) << i;  // streamed in order, nothing extra
      EXPECT_EQ(got[i].result.finish_reason, want[i].result.finish_reason) << i;
    }
    const std::string text = opts.registry->exposition();
    const double drafted =
        test_support::metric_sum(text, "moeflow_speculative_drafted_tokens_total");
    const double accepted =
        test_support::metric_sum(text, "moeflow_speculative_accepted_tokens_total");
    EXPECT_GT(accepted, 0.0);
    EXPECT_GE(drafted, accepted);
    EXPECT_EQ(test_support::metric_sample(text, "moeflow_speculative_enabled"), 1.0);
    EXPECT_GT(test_support::metric_sum(text, "moeflow_speculative_decisions_total",
                                       {{"reason", "fixed"}}),
              0.0);
    EXPECT_GT(test_support::metric_sum(text, "moeflow_speculative_position_drafted_tokens_total",
                                       {{"position", "0"}}),
              0.0);
    expect_caches_released(system, p);
  }
}

TEST_F(SpeculativeServingDemo, AdaptiveControllerAndObservedResidentSetKeepPlainTokens) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  const auto reqs = requests();
  const auto want = plain_outcomes(system, demo(), reqs);

  SpeculativeSettings adaptive;
  adaptive.enabled = true;
  adaptive.options.draft.top_k = 0;  // the model's top-k over a resident set chosen from routing
  adaptive.resident_observed = 2;
  adaptive.observe_rows = 8;
  LocalPipelineOptions opts;
  opts.speculative = adaptive;
  auto log = std::make_shared<std::vector<std::string>>();
  auto log_mutex = std::make_shared<std::mutex>();
  opts.speculator.log = [log, log_mutex](const std::string& line) {
    std::lock_guard<std::mutex> lock(*log_mutex);
    log->push_back(line);
  };
  const LocalPipeline p = spawn_local_pipeline(system, demo(), {{}}, opts);
  const auto got = test_support::run_requests(system, p.scheduler, reqs);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].error, "") << i;
    EXPECT_EQ(got[i].result.tokens, want[i].result.tokens) << i;
  }
  expect_caches_released(system, p);
  std::lock_guard<std::mutex> lock(*log_mutex);
  // The demo model has 4 MoE layers: 2 experts chosen for each.
  const auto chosen = std::find_if(log->begin(), log->end(), [](const std::string& l) {
    return l.find("resident experts chosen") != std::string::npos;
  });
  ASSERT_NE(chosen, log->end());
  EXPECT_NE(chosen->find("layer 3: "), std::string::npos) << *chosen;
}

// The adaptive controller over long generations: whenever it has speculation off, the scheduler
// decodes the speculator's sequences itself between probes and hands the tokens over (which of
// the modes it picks depends on this machine's timings). Either way the tokens are the plain
// server's and no KV id is left over; when it was off, the speculator saw fewer rounds than there
// were decode steps.
TEST_F(SpeculativeServingDemo, SchedulerDecodesPlainlyBetweenProbesWithTheSameTokens) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  std::vector<GenerationRequest> reqs;
  for (const std::vector<int32_t>& prompt :
       std::vector<std::vector<int32_t>>{{1, 15, 27, 3}, {1, 99, 5}}) {
    GenerationRequest r;
    r.prompt = prompt;
    r.max_tokens = 160;
    r.stop_at_eos = false;
    reqs.push_back(r);
  }
  const auto want = plain_outcomes(system, demo(), reqs);

  SpeculativeSettings adaptive;
  adaptive.enabled = true;
  adaptive.options.control.probe_every = 4;
  LocalPipelineOptions opts;
  opts.registry = std::make_shared<metrics::Registry>();
  opts.speculative = adaptive;
  const LocalPipeline p = spawn_local_pipeline(system, demo(), {{}}, opts);
  const auto got = test_support::run_requests(system, p.scheduler, reqs);
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].error, "") << i;
    EXPECT_EQ(got[i].result.tokens, want[i].result.tokens) << i;
  }
  const std::string text = opts.registry->exposition();
  const double rounds = test_support::metric_sum(text, "moeflow_speculative_decisions_total");
  const double off = test_support::metric_sum(text, "moeflow_speculative_decisions_total",
                                              {{"reason", "slower_than_plain"}});
  EXPECT_GT(rounds, 0.0) << text;
  // Without the hand-over every one of the 160 steps would be a round.
  if (off > 0) {
    EXPECT_LT(rounds, 120.0) << "the speculator was asked for every step\n" << text;
  }
  expect_caches_released(system, p);
}

// The hand-over itself, driven by hand as the scheduler does it: a sequence is prefilled and
// decoded two steps on the router directly, then its next round brings those tokens to the
// speculator (SpeculativeRoundRequest::decoded). The round continues exactly where plain
// decoding would, and both KV ids are released.
TEST_F(SpeculativeServingDemo, RoundAfterPlainStepsTakesOverTheDecodedTokens) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  GenerationRequest r;
  r.prompt = {1, 99, 5};  // its first tokens differ, so a token fed twice or lost shows
  r.max_tokens = 12;
  r.stop_at_eos = false;
  const std::vector<int32_t> want = plain_outcomes(system, demo(), {r})[0].result.tokens;
  ASSERT_EQ(want.size(), 12u);

  LocalPipelineOptions opts;
  opts.speculative = fixed_gamma(2);
  const LocalPipeline p = spawn_local_pipeline(system, demo(), {{}}, opts);
  caf::scoped_actor self{system};
  const uint64_t id = 1;
  auto step = [&](std::vector<int32_t> tokens) {
    auto request = std::make_shared<StepRequest>();
    request->sequences.push_back({id, std::move(tokens)});
    int32_t next = -1;
    self->request(p.router, 30s, step_atom::value, StepRequestPtr(request))
        .receive([&](const StepResultPtr& out) { next = argmax(out->logits.data(), out->vocab); },
                 [&](caf::error& err) { ADD_FAILURE() << describe(err); });
    return next;
  };
  std::vector<int32_t> got = {step(r.prompt)};
  auto seq = std::make_shared<SpeculativeSequence>();
  seq->seq_id = id;
  seq->tokens = r.prompt;
  seq->tokens.push_back(got[0]);
  self->send(p.speculator, adopt_atom::value, SpeculativeSequencePtr(seq));
  // Two plain steps by hand, as the scheduler takes them while plain_ahead > 0.
  for (int i = 0; i < 2; ++i) got.push_back(step({got.back()}));
  auto round = std::make_shared<SpeculativeRoundRequest>();
  round->sequences.push_back({id, r.max_tokens - static_cast<int64_t>(got.size())});
  round->decoded.push_back({got[1], got[2]});
  round->plain_steps = 2;
  self->request(p.speculator, 60s, round_atom::value, SpeculativeRoundRequestPtr(round))
      .receive(
          [&](const SpeculativeRoundResultPtr& out) {
            ASSERT_EQ(out->tokens.size(), 1u);
            EXPECT_FALSE(out->tokens[0].empty());
            got.insert(got.end(), out->tokens[0].begin(), out->tokens[0].end());
          },
          [&](caf::error& err) { ADD_FAILURE() << describe(err); });
  ASSERT_LT(got.size(), want.size());
  EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + got.size()));
  // The router's cache holds the prompt and every token but the last, once each: one more plain
  // step continues the reference.
  got.push_back(step({got.back()}));
  EXPECT_EQ(p.router_model->cache().length(id),
            static_cast<int64_t>(r.prompt.size() + got.size()) - 1);
  EXPECT_EQ(got.back(), want[got.size() - 1]);
  self->send(p.speculator, release_atom::value, id);
  expect_caches_released(system, p);
}

// A stream cancelled mid-generation frees both of its KV ids (the full model's and the
// drafter's); the requests next to it are unaffected; turning speculation off live hands running
// sequences back to plain decoding with the same tokens.
TEST_F(SpeculativeServingDemo, CancelFreesBothCachesAndTurningOffLiveKeepsTokens) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  GenerationRequest longer;
  longer.prompt = {1, 15, 27, 3};
  longer.max_tokens = 200;
  longer.stop_at_eos = false;
  GenerationRequest other = longer;
  other.max_tokens = 40;
  const auto want = plain_outcomes(system, demo(), {other});

  LocalPipelineOptions opts;
  opts.speculative = fixed_gamma(4);
  const LocalPipeline p = spawn_local_pipeline(system, demo(), {{}}, opts);
  caf::scoped_actor self{system};
  self->send(p.scheduler, stream_atom::value, uint64_t{7},
             GenerationRequestPtr(std::make_shared<GenerationRequest>(longer)),
             caf::actor_cast<caf::actor>(self));
  self->send(p.scheduler, stream_atom::value, uint64_t{8},
             GenerationRequestPtr(std::make_shared<GenerationRequest>(other)),
             caf::actor_cast<caf::actor>(self));
  std::vector<int32_t> tokens7, tokens8;
  bool cancelled = false, switched = false, done8 = false;
  while (!done8) {
    bool timed_out = false;
    self->receive(
        [&](token_atom, uint64_t id, int32_t token) {
          (id == 7 ? tokens7 : tokens8).push_back(token);
          if (id == 7 && tokens7.size() >= 10 && !cancelled) {
            self->send(p.scheduler, cancel_atom::value, uint64_t{7});
            cancelled = true;
          }
          if (id == 8 && tokens8.size() >= 20 && !switched) {
            SpeculativeSettings off = fixed_gamma(4);
            off.enabled = false;
            configure(system, p, off);
            switched = true;
          }
        },
        [&](done_atom, uint64_t id, const GenerationResultPtr& r) {
          EXPECT_EQ(id, 8u);
          EXPECT_EQ(r->tokens, tokens8);
          done8 = true;
        },
        [&](fail_atom, uint64_t id, const std::string& why) {
          ADD_FAILURE() << id << ": " << why;
          done8 = true;
        },
        caf::after(60s) >> [&] { timed_out = true; });
    if (timed_out) {
      ADD_FAILURE() << "timed out";
      break;
    }
  }
  EXPECT_TRUE(cancelled);
  EXPECT_LT(tokens7.size(), 200u);
  EXPECT_EQ(tokens8, want[0].result.tokens);
  stop_and_wait(system, p);
  const KvCacheState& cache = p.router_model->cache();
  EXPECT_FALSE(cache.contains(1));  // the cancelled request: the scheduler's first sequence id
  EXPECT_FALSE(cache.contains(SpeculativeDecoder::draft_id(1)));
  EXPECT_EQ(cache.sequence_count(), 0u);
  stop_pipeline(p);
}

}  // namespace
}  // namespace moeflow
