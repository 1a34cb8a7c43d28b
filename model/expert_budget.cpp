#include "model/expert_budget.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "core/error.h"

namespace moeflow {

void validate(const ExpertBudget& budget, const ModelConfig& cfg) {
  if (budget.top_k < 0 || budget.top_k > cfg.num_experts)
    throw Error("expert budget: top_k " + std::to_string(budget.top_k) + " is outside [0, " +
                std::to_string(cfg.num_experts) + "] (0 keeps the model's " +
                std::to_string(cfg.top_k) + ")");
  if (budget.resident.empty()) return;
  if (static_cast<int64_t>(budget.resident.size()) != cfg.num_layers)
    throw Error("expert budget: the resident set names " + std::to_string(budget.resident.size()) +
                " layers, the model has " + std::to_string(cfg.num_layers));
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!cfg.layer_is_moe[l]) continue;
    const auto& experts = budget.resident[l];
    if (experts.empty())
      throw Error("expert budget: layer " + std::to_string(l) +
                  " has no resident experts (an MoE layer needs at least one)");
    std::vector<bool> seen(cfg.num_experts, false);
    for (int32_t e : experts) {
      if (e < 0 || e >= cfg.num_experts)
        throw Error("expert budget: layer " + std::to_string(l) + ": resident expert " +
                    std::to_string(e) + " is outside [0, " + std::to_string(cfg.num_experts) + ")");
      if (seen[e])
        throw Error("expert budget: layer " + std::to_string(l) + ": resident expert " +
                    std::to_string(e) + " is listed twice");
      seen[e] = true;
    }
  }
}

int64_t budget_top_k(const ExpertBudget& budget, const ModelConfig& cfg, int64_t layer) {
  const int64_t k = budget.top_k > 0 ? budget.top_k : cfg.top_k;
  if (budget.resident.empty()) return k;
  return std::min<int64_t>(k, static_cast<int64_t>(budget.resident[layer].size()));
}

std::vector<uint8_t> resident_mask(const ExpertBudget& budget, const ModelConfig& cfg,
                                   int64_t layer) {
  if (budget.resident.empty()) return {};
  std::vector<uint8_t> mask(cfg.num_experts, 0);
  for (int32_t e : budget.resident[layer]) mask[e] = 1;
  return mask;
}

std::vector<std::vector<int32_t>> most_used_experts(const std::vector<int64_t>& use,
                                                    const ModelConfig& cfg, int64_t per_layer) {
  const int64_t E = cfg.num_experts;
  if (static_cast<int64_t>(use.size()) != cfg.num_layers * E)
    throw Error("most_used_experts: " + std::to_string(use.size()) +
                " counts, expected layers × experts = " + std::to_string(cfg.num_layers * E));
  if (per_layer < 1 || per_layer > E)
    throw Error("most_used_experts: " + std::to_string(per_layer) +
                " experts per layer is outside [1, " + std::to_string(E) + "]");
  std::vector<std::vector<int32_t>> chosen(cfg.num_layers);
  std::vector<int32_t> order(E);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!cfg.layer_is_moe[l]) continue;
    const int64_t* counts = use.data() + l * E;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
    chosen[l].assign(order.begin(), order.begin() + per_layer);
    std::sort(chosen[l].begin(), chosen[l].end());
  }
  return chosen;
}

}  // namespace moeflow
