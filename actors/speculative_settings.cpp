#include "actors/speculative_settings.h"

namespace moeflow {

SpeculativeSettings speculative_settings(const SpeculativeSpec& spec, const ModelConfig& model) {
  SpeculativeSettings s;
  s.enabled = spec.enabled;
  SpeculativeOptions& o = s.options;
  o.draft.top_k = spec.draft_top_k;
  for (int64_t l = 0; l < model.num_layers && !spec.resident.empty(); ++l) {
    const auto& ids = spec.resident[spec.resident_shared ? 0 : l];
    o.draft.resident.emplace_back(ids.begin(), ids.end());
  }
  o.control.adaptive = spec.adaptive;
  o.control.gamma = spec.gamma;
  o.control.gamma_min = spec.gamma_min;
  o.control.gamma_max = spec.gamma_max;
  o.draft_context = spec.draft_context;
  s.resident_observed = spec.resident_count;
  return s;
}

}  // namespace moeflow
