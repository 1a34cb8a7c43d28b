#pragma once
// The speculator's metrics (docs/metrics.md, "Speculative decoding"): whether speculation is on,
// drafted and accepted tokens in total and per draft position, the adaptive controller's decisions
// by reason and the γ of the last round. Every series exists from the start (at 0), so dashboards
// and alerts see them before the first round. Updated by the speculator after each round.
#include <array>
#include <memory>

#include "metrics/registry.h"
#include "model/speculative_stats.h"

namespace moeflow {

class SpeculativeMetrics {
 public:
  // Keeps `registry` alive as long as these metrics.
  explicit SpeculativeMetrics(std::shared_ptr<metrics::Registry> registry);

  void enabled(bool on) { enabled_.set(on ? 1.0 : 0.0); }
  // Adds what happened between two snapshots of one decoder's stats; `gamma` is the γ of the
  // round (0 for a plain round).
  void round(const SpeculativeStats& before, const SpeculativeStats& after, int64_t gamma);

 private:
  std::shared_ptr<metrics::Registry> registry_;
  metrics::Gauge& enabled_;
  metrics::Counter& drafted_;
  metrics::Counter& accepted_;
  metrics::Gauge& gamma_;
  std::array<metrics::Counter*, kMaxDraftPositions> drafted_at_{};
  std::array<metrics::Counter*, kMaxDraftPositions> accepted_at_{};
  std::array<metrics::Counter*, kSpeculationReasons> decisions_{};
};

}  // namespace moeflow
