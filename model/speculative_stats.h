#pragma once
// Counters of self-speculative decoding since a decoder was made: what was drafted and accepted
// (in total and per draft position), which decisions the adaptive controller took and why, and
// the time and expert bytes of each kind of pass. Plain data for benchmarks, logs and metrics.
#include <array>
#include <cstdint>

#include "model/speculative_controller.h"

namespace moeflow {

inline constexpr int kMaxDraftPositions = 8;  // the largest γ

// One kind of forward pass: how many, how long, how many expert weight bytes they read.
struct PassCounters {
  int64_t passes = 0;
  int64_t rows = 0;
  double seconds = 0.0;
  int64_t expert_bytes = 0;
  int64_t weight_bytes = 0;  // router stage + experts
};

struct SpeculativeStats {
  int64_t rounds = 0;
  int64_t speculative_rounds = 0;
  int64_t plain_rounds = 0;
  int64_t drafted = 0;   // drafted tokens
  int64_t accepted = 0;  // of which the verifier accepted
  int64_t emitted = 0;   // tokens produced (accepted drafts + corrections/bonus + plain tokens)
  // Per draft position i (0 = the first drafted token of a round): tokens drafted there, and
  // accepted there (acceptance at i, given every earlier draft was accepted, is
  // accepted_at[i] / accepted_at[i - 1] for i > 0, accepted_at[0] / drafted_at[0] for i = 0).
  std::array<int64_t, kMaxDraftPositions> drafted_at{};
  std::array<int64_t, kMaxDraftPositions> accepted_at{};
  std::array<int64_t, kSpeculationReasons> decisions{};  // rounds per SpeculationReason
  PassCounters draft, verify, plain, catch_up;           // catch_up: prefill of either cache

  double acceptance_rate() const {
    return drafted > 0 ? static_cast<double>(accepted) / drafted : 0.0;
  }
};

}  // namespace moeflow
