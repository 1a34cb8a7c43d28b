#include "actors/speculative_metrics.h"

#include <string>

namespace moeflow {

SpeculativeMetrics::SpeculativeMetrics(std::shared_ptr<metrics::Registry> registry)
    : registry_(std::move(registry)),
      enabled_(registry_->gauge("moeflow_speculative_enabled",
                                "1 while self-speculative decoding is on")),
      drafted_(
          registry_->counter("moeflow_speculative_drafted_tokens_total", "Draft tokens proposed")),
      accepted_(registry_->counter("moeflow_speculative_accepted_tokens_total",
                                   "Draft tokens the verifier accepted")),
      gamma_(registry_->gauge("moeflow_speculative_gamma",
                              "Draft tokens per sequence in the last round (0: a plain round)")) {
  for (int i = 0; i < kMaxDraftPositions; ++i) {
    const metrics::Labels at{{"position", std::to_string(i)}};
    drafted_at_[i] = &registry_->counter("moeflow_speculative_position_drafted_tokens_total",
                                         "Draft tokens proposed at this position of a round "
                                         "(0 = the first draft)",
                                         at);
    accepted_at_[i] = &registry_->counter(
        "moeflow_speculative_position_accepted_tokens_total",
        "Draft tokens accepted at this position of a round (every earlier one was accepted too)",
        at);
  }
  for (int r = 0; r < kSpeculationReasons; ++r)
    decisions_[r] = &registry_->counter(
        "moeflow_speculative_decisions_total",
        "Rounds by the adaptive controller's reason: fixed, measuring, pays, slower_than_plain, "
        "probe",
        {{"reason", reason_name(static_cast<SpeculationReason>(r))}});
}

void SpeculativeMetrics::round(const SpeculativeStats& before, const SpeculativeStats& after,
                               int64_t gamma) {
  drafted_.add(static_cast<double>(after.drafted - before.drafted));
  accepted_.add(static_cast<double>(after.accepted - before.accepted));
  for (int i = 0; i < kMaxDraftPositions; ++i) {
    drafted_at_[i]->add(static_cast<double>(after.drafted_at[i] - before.drafted_at[i]));
    accepted_at_[i]->add(static_cast<double>(after.accepted_at[i] - before.accepted_at[i]));
  }
  for (int r = 0; r < kSpeculationReasons; ++r)
    decisions_[r]->add(static_cast<double>(after.decisions[r] - before.decisions[r]));
  gamma_.set(static_cast<double>(gamma));
}

}  // namespace moeflow
