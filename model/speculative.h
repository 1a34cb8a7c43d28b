#pragma once
// Self-speculative decoding over one model (a ForwardBackend: an in-process Engine, or the router
// and its expert shards through RouterBackend): the same MoE with a smaller expert budget (e.g.
// top-1 instead of top-2, or only a resident set of experts) drafts γ tokens per sequence, and the
// full model verifies all of them in one batched pass. Greedy output is token for token that of
// plain greedy decoding; sampled output follows exactly the full model's distribution.
//
// Each sequence keeps two sets of KV rows in the backend's cache: the full model's under its own
// id, the drafter's under draft_id(id) — past layer 0 the drafter's keys and values differ from
// the full model's, so they are never mixed. Both are rolled back past the first rejected token.
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "model/engine.h"
#include "model/expert_budget.h"
#include "model/forward_backend.h"
#include "model/sampler.h"
#include "model/speculative_controller.h"
#include "model/speculative_rule.h"
#include "model/speculative_stats.h"

namespace moeflow {

struct SpeculativeOptions {
  ExpertBudget draft{1, {}};                     // the drafter's budget: top-1 by default
  ControllerOptions control;                     // γ, fixed or adaptive, and the on/off switch
  AcceptanceTest acceptance = exact_acceptance;  // tests only: see speculative_rule.h
  // A drafter that has fallen further behind than this many tokens (a long prompt, or plain
  // decoding while speculation was off) is rebuilt from only the last this-many tokens instead of
  // prefilling them all; 0: always catch up completely. Only draft quality depends on it.
  int64_t draft_context = 32;
};

// One sequence in a round, and the most tokens it may produce in it (its remaining budget).
struct SpeculativeRequest {
  uint64_t seq_id = 0;
  int64_t limit = 1 << 30;
};

class SpeculativeDecoder {
 public:
  // Throws moeflow::Error for a budget the model cannot honour or bad controller options.
  SpeculativeDecoder(ForwardBackend& engine, const SpeculativeOptions& opts);

  // Registers a sequence; nothing runs until step(). Its prompt (at least one token) is
  // prefilled by the first step, whose first token is already verified speculatively. The full
  // cache may already hold a prefix of the prompt, but not its last token (a server prefills the
  // prompt and samples the first token plainly, then hands prompt + token here); the drafter's
  // cache must be empty.
  // `stop_tokens` end the sequence: a round never emits tokens after one.
  void add(uint64_t seq_id, std::vector<int32_t> prompt, const SamplingParams& sampling,
           std::vector<int64_t> stop_tokens = {});

  // One round for these sequences, speculative or plain as the controller decides (the batch
  // size is theirs). Returns each one's new tokens, at least 1 and at most its limit; sequences
  // accept different numbers of drafts.
  std::vector<std::vector<int32_t>> step(const std::vector<SpeculativeRequest>& requests);

  // Frees both caches of a sequence.
  void finish(uint64_t seq_id);

  // Tokens of the sequence that were decoded plainly elsewhere, each fed to the full model's
  // cache but the last (as after one of this decoder's rounds); `rounds` such rounds of `batch`
  // sequences ran, `timed` of them steady decode steps taking `seconds` in all (see
  // SpeculationController::record_plain_elsewhere).
  void append_decoded(uint64_t seq_id, const std::vector<int32_t>& tokens);
  void record_plain_elsewhere(int64_t batch, int64_t rounds, int64_t timed, double seconds) {
    controller_.record_plain_elsewhere(batch, rounds, timed, seconds);
  }

  // Forgets a sequence and frees only the drafter's cache: the caller goes on decoding it plainly
  // (the full cache holds every token of tokens(seq_id) but the last).
  void forget(uint64_t seq_id);

  // Prompt and output so far. Throws moeflow::Error for a sequence never added.
  const std::vector<int32_t>& tokens(uint64_t seq_id) { return sequence(seq_id).tokens; }

  const SpeculativeStats& stats() const { return stats_; }
  const SpeculationController& controller() const { return controller_; }
  const SpeculativeOptions& options() const { return opts_; }

  // The id of the drafter's KV rows for a sequence: the top bit set (sequence ids must not use
  // it).
  static uint64_t draft_id(uint64_t seq_id) { return seq_id | kDraftBit; }
  static constexpr uint64_t kDraftBit = uint64_t{1} << 63;

 private:
  struct Sequence {
    std::vector<int32_t> tokens;  // prompt and output; the last is not yet in the full cache
    Sampler sampler;              // its distribution() is the transform shared by p and q
    std::mt19937_64 rng;          // drafts, acceptance tests and corrections
    bool greedy = true;
    std::vector<int64_t> stop_tokens;
    int64_t draft_offset = 0;  // tokens[draft_offset + i] is row i of the drafter's cache
    // This round's drafts and, when sampling, the distributions they were drawn from.
    std::vector<int32_t> drafts;
    std::vector<std::vector<float>> draft_dists;
    int64_t gamma = 0;
  };
  Sequence& sequence(uint64_t seq_id);
  // Runs one forward pass, timing it and counting its bytes into `counters`.
  std::vector<float> timed_forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                                   const ExpertBudget& budget, PassCounters& counters);
  int32_t pick(Sequence& s, const float* logits, std::vector<float>* dist);
  // Returns the drafter's part (the full model's catch-up happens in plain decoding too).
  PassCounters catch_up(const std::vector<SpeculativeRequest>& requests);
  std::vector<std::vector<int32_t>> plain_round(const std::vector<SpeculativeRequest>& requests);
  std::vector<std::vector<int32_t>> speculative_round(
      const std::vector<SpeculativeRequest>& requests, int64_t gamma);
  // Appends `out` to the sequence, cut after a stop token.
  void emit(Sequence& s, std::vector<int32_t>& out);

  ForwardBackend& engine_;
  SpeculativeOptions opts_;
  SpeculationController controller_;
  std::unordered_map<uint64_t, Sequence> sequences_;
  SpeculativeStats stats_;
};

}  // namespace moeflow
