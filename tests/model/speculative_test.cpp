// Self-speculative greedy decoding against plain greedy decoding (Engine + argmax, via
// generate()): token for token identical on every golden checkpoint and the demo model, for
// several prompts of different lengths, γ from 1 to 8, batched and one sequence at a time, with
// sequences joining and leaving between rounds, and for each kind of draft budget.
#include "model/speculative.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/generator.h"
#include "model/speculative_generator.h"
#include "tests/support/golden.h"
#include "tokenizer/tokenizer.h"

namespace moeflow {
namespace {

std::filesystem::path model_dir(const std::string& name) {
  if (name == "demo") return std::filesystem::path(MOEFLOW_SOURCE_DIR) / "models" / "demo";
  return test_support::golden_dir(name);
}

// The golden fixture's prompts (5, 11 and 8 tokens), or three English prompts for the demo model
// (it writes fortunes, so its greedy continuations run long before EOS); then seeded random
// prompts of 1, 3 and 17 tokens.
std::vector<std::vector<int32_t>> prompts_for(const std::string& name, int64_t vocab) {
  std::vector<std::vector<int32_t>> prompts;
  if (name == "demo") {
    const Tokenizer tokenizer = Tokenizer::load(model_dir(name));
    for (const char* text : {"A man walks into a bar", "You will meet",
                             "Q: What is the difference between a duck?\nA:"})
      prompts.push_back(tokenizer.encode(text, false));
  } else {
    prompts = test_support::load_golden(name).prompts;
  }
  std::mt19937_64 rng(42);
  for (int64_t len : {1, 3, 17}) {
    std::vector<int32_t> p(len);
    for (auto& t : p) t = static_cast<int32_t>(rng() % vocab);
    prompts.push_back(p);
  }
  return prompts;
}

SpeculativeOptions fixed_gamma(int64_t gamma) {
  SpeculativeOptions o;
  o.control.adaptive = false;
  o.control.gamma = gamma;
  return o;
}

class SpeculativeGreedy : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    engine_ = Engine::load(model_dir(GetParam()), {"auto", false});
    const std::vector<std::vector<int32_t>> prompts =
        prompts_for(GetParam(), engine_->config().vocab_size);
    // Different lengths so that sequences leave the batch at different rounds.
    const int64_t max_tokens[] = {24, 13, 20, 7, 17, 24};
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationRequest r;
      r.prompt = prompts[i];
      r.max_tokens = max_tokens[i % 6];
      requests_.push_back(r);
    }
    plain_batched_ = generate(*engine_, requests_);
    for (const GenerationRequest& r : requests_)
      plain_single_.push_back(generate(*engine_, {r})[0]);
  }

  // Expects speculative results equal to the plain ones and the counters to add up.
  void expect_same(const SpeculativeGeneration& got, const std::vector<GenerationResult>& want,
                   const std::string& what) {
    ASSERT_EQ(got.results.size(), want.size());
    int64_t tokens = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got.results[i].tokens, want[i].tokens) << what << ", sequence " << i;
      EXPECT_EQ(got.results[i].finish_reason, want[i].finish_reason) << what << ", sequence " << i;
      tokens += static_cast<int64_t>(got.results[i].tokens.size());
    }
    const SpeculativeStats& s = got.stats;
    EXPECT_EQ(s.emitted, tokens) << what;
    EXPECT_LE(s.accepted, s.drafted) << what;
    EXPECT_EQ(std::accumulate(s.drafted_at.begin(), s.drafted_at.end(), int64_t{0}), s.drafted);
    EXPECT_EQ(std::accumulate(s.accepted_at.begin(), s.accepted_at.end(), int64_t{0}), s.accepted);
    EXPECT_EQ(s.speculative_rounds + s.plain_rounds, s.rounds) << what;
  }

  // Every sequence was released: nothing of this test's ids is left in the cache.
  void expect_released(uint64_t base, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      EXPECT_EQ(engine_->sequence_length(base + i), 0);
      EXPECT_EQ(engine_->sequence_length(SpeculativeDecoder::draft_id(base + i)), 0);
    }
  }

  std::unique_ptr<Engine> engine_;
  std::vector<GenerationRequest> requests_;
  std::vector<GenerationResult> plain_batched_, plain_single_;
};

TEST_P(SpeculativeGreedy, BatchedMatchesPlainForEveryGamma) {
  for (int64_t gamma = 1; gamma <= 8; ++gamma) {
    const auto got = generate_speculative(*engine_, requests_, fixed_gamma(gamma));
    expect_same(got, plain_batched_, "gamma " + std::to_string(gamma));
    EXPECT_EQ(got.stats.decisions[static_cast<int>(SpeculationReason::fixed)], got.stats.rounds);
    EXPECT_GT(got.stats.drafted, 0);
    std::printf("%s, gamma %lld: %lld drafted, %.0f%% accepted, %lld rounds for %lld tokens\n",
                GetParam().c_str(), static_cast<long long>(gamma),
                static_cast<long long>(got.stats.drafted), 100.0 * got.stats.acceptance_rate(),
                static_cast<long long>(got.stats.rounds),
                static_cast<long long>(got.stats.emitted));
  }
}

TEST_P(SpeculativeGreedy, SingleSequenceMatchesPlainForEveryGamma) {
  for (int64_t gamma = 1; gamma <= 8; ++gamma)
    for (size_t i = 0; i < requests_.size(); ++i)
      expect_same(generate_speculative(*engine_, {requests_[i]}, fixed_gamma(gamma)),
                  {plain_single_[i]},
                  "gamma " + std::to_string(gamma) + ", prompt " + std::to_string(i) + " alone");
}

// A drafter with the model's own budget is the full model: every draft is accepted (up to a
// rare argmax flip from rounding between row counts). A resident set of half the experts and a
// top-1 drafter inside it draft worse, and the output stays the same.
TEST_P(SpeculativeGreedy, EveryDraftBudgetMatchesPlain) {
  const ModelConfig& cfg = engine_->config();
  SpeculativeOptions full = fixed_gamma(4);
  full.draft.top_k = cfg.top_k;
  const auto same = generate_speculative(*engine_, requests_, full);
  expect_same(same, plain_batched_, "draft with the full budget");
  EXPECT_GE(same.stats.acceptance_rate(), 0.95);

  SpeculativeOptions resident = fixed_gamma(3);
  resident.draft.top_k = 0;
  resident.draft.resident.assign(cfg.num_layers, {});
  for (auto& layer : resident.draft.resident)
    for (int32_t e = 0; e < cfg.num_experts / 2; ++e) layer.push_back(e);
  expect_same(generate_speculative(*engine_, requests_, resident), plain_batched_,
              "resident half, model top-k");
  resident.draft.top_k = 1;
  expect_same(generate_speculative(*engine_, requests_, resident), plain_batched_,
              "resident half, top-1");
}

// A drafter behind by more than draft_context tokens (a long prompt; rounds that drafted
// nothing) is rebuilt from the last draft_context tokens, or with 0 catches up on all of them;
// either way only the drafts change, never the tokens.
TEST_P(SpeculativeGreedy, DrafterCatchesUpOrRebuildsAfterRoundsWithoutDrafts) {
  for (int64_t context : {0, 1, 3, 32}) {
    SpeculativeOptions o = fixed_gamma(3);
    o.draft_context = context;
    expect_same(generate_speculative(*engine_, requests_, o), plain_batched_,
                "draft_context " + std::to_string(context));
    // Alternate stretches of rounds with a limit of one token (nothing drafted, the drafter
    // falls behind) and rounds that draft again.
    SpeculativeDecoder decoder(*engine_, o);
    const uint64_t base = 700;
    std::vector<std::vector<int32_t>> out(requests_.size());
    for (size_t i = 0; i < requests_.size(); ++i)
      decoder.add(base + i, requests_[i].prompt, requests_[i].sampling);
    for (int round = 0;; ++round) {
      std::vector<SpeculativeRequest> step;
      std::vector<size_t> who;
      for (size_t i = 0; i < requests_.size(); ++i) {
        const int64_t left = plain_single_[i].tokens.size() - out[i].size();
        if (left <= 0) continue;
        step.push_back({base + i, (round / 4) % 2 == 0 ? 1 : left});
        who.push_back(i);
      }
      if (step.empty()) break;
      const auto tokens = decoder.step(step);
      for (size_t j = 0; j < who.size(); ++j)
        out[who[j]].insert(out[who[j]].end(), tokens[j].begin(), tokens[j].end());
    }
    for (size_t i = 0; i < requests_.size(); ++i) {
      EXPECT_EQ(out[i], plain_single_[i].tokens)
          << "draft_context " << context << ", sequence " << i;
      decoder.finish(base + i);
    }
    expect_released(base, requests_.size());
  }
}

// The adaptive controller changes γ and switches speculation on and off; never the tokens.
TEST_P(SpeculativeGreedy, AdaptiveMatchesPlain) {
  SpeculativeOptions o;
  o.control.adaptive = true;
  o.control.probe_every = 2;  // switch and probe often within a short generation
  const auto got = generate_speculative(*engine_, requests_, o);
  expect_same(got, plain_batched_, "adaptive");
  EXPECT_GT(got.stats.decisions[static_cast<int>(SpeculationReason::measuring)], 0);
}

// Continuous batching: sequences join while others are mid-generation and leave when done; each
// matches its plain generation.
TEST_P(SpeculativeGreedy, SequencesJoinAndLeaveBetweenRounds) {
  const uint64_t base = 500;
  SpeculativeDecoder decoder(*engine_, fixed_gamma(3));
  std::vector<std::vector<int32_t>> out(requests_.size());
  std::vector<size_t> active;
  size_t next = 0;
  for (int round = 0; next < requests_.size() || !active.empty(); ++round) {
    if (next < requests_.size() && round % 2 == 0) {  // one newcomer every other round
      decoder.add(base + next, requests_[next].prompt, requests_[next].sampling);
      active.push_back(next++);
    }
    std::vector<SpeculativeRequest> step;
    for (size_t i : active)
      step.push_back({base + i, requests_[i].max_tokens - static_cast<int64_t>(out[i].size())});
    const auto tokens = decoder.step(step);
    std::vector<size_t> still;
    for (size_t j = 0; j < active.size(); ++j) {
      const size_t i = active[j];
      out[i].insert(out[i].end(), tokens[j].begin(), tokens[j].end());
      if (static_cast<int64_t>(out[i].size()) < requests_[i].max_tokens) {
        still.push_back(i);
        continue;
      }
      decoder.finish(base + i);
    }
    active = still;
  }
  for (size_t i = 0; i < requests_.size(); ++i) {
    // The golden checkpoints have no EOS; the demo's may stop a plain generation early.
    std::vector<int32_t> want = plain_single_[i].tokens;
    if (plain_single_[i].finish_reason == "stop") out[i].resize(want.size());
    EXPECT_EQ(out[i], want) << "sequence " << i;
  }
  expect_released(base, requests_.size());
}

TEST_P(SpeculativeGreedy, RefusesBadUse) {
  SpeculativeDecoder decoder(*engine_, fixed_gamma(2));
  EXPECT_THROW(decoder.add(SpeculativeDecoder::kDraftBit | 1, {1}, {}), Error);
  EXPECT_THROW(decoder.add(1, {}, {}), Error);
  decoder.add(1, {1, 2}, {});
  EXPECT_THROW(decoder.add(1, {1, 2}, {}), Error);
  EXPECT_THROW(decoder.step({{2, 4}}), Error);
  EXPECT_THROW(decoder.step({{1, 0}}), Error);
  EXPECT_EQ(decoder.step({{1, 1}})[0].size(), 1u);  // a limit of 1: nothing drafted
  decoder.finish(1);
  SpeculativeOptions bad = fixed_gamma(2);
  bad.draft.top_k = engine_->config().num_experts + 1;
  EXPECT_THROW(SpeculativeDecoder(*engine_, bad), Error);
  bad = fixed_gamma(9);
  EXPECT_THROW(SpeculativeDecoder(*engine_, bad), Error);
}

INSTANTIATE_TEST_SUITE_P(Models, SpeculativeGreedy,
                         ::testing::Values("mixtral", "qwen2_moe", "olmoe", "deepseek", "demo"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moeflow
