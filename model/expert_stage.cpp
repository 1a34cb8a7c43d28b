#include "model/expert_stage.h"

#include <algorithm>

#include "kernels/cpu/ops.h"
#include "model/swiglu.h"

namespace moeflow {

ExpertStage::ExpertStage(const ModelConfig& cfg, const ExpertWeights& weights)
    : cfg_(cfg), weights_(weights) {}

int64_t ExpertStage::run(const TokenBatch& batch, float* out) {
  const int64_t n = batch.size(), d = batch.hidden_size, k = batch.top_k;
  std::fill(out, out + n * d, 0.0f);
  slots_.assign(cfg_.num_experts, {});
  for (int64_t s = 0; s < n * k; ++s) {
    const int32_t e = batch.experts[s];
    if (e >= 0 && e < cfg_.num_experts && holds(batch.layer, e)) slots_[e].push_back(s);
  }
  int64_t computed = 0;
  for (int64_t e = 0; e < cfg_.num_experts; ++e) {
    const auto& slots = slots_[e];
    if (slots.empty()) continue;
    const int64_t m = static_cast<int64_t>(slots.size());
    gathered_.resize(m * d);
    result_.resize(m * d);
    for (int64_t i = 0; i < m; ++i) {
      const float* src = batch.row(slots[i] / k);
      std::copy(src, src + d, gathered_.data() + i * d);
    }
    swiglu(*weights_.find(batch.layer, e), gathered_.data(), m, result_.data(), scratch_);
    for (int64_t i = 0; i < m; ++i)
      kernels::axpy(batch.weights[slots[i]], result_.data() + i * d, out + (slots[i] / k) * d, d);
    computed += m;
  }
  return computed;
}

int64_t ExpertStage::bytes_touched(const TokenBatch& batch) const {
  std::vector<bool> seen(cfg_.num_experts, false);
  int64_t bytes = 0;
  for (int32_t e : batch.experts) {
    if (e < 0 || e >= cfg_.num_experts || seen[e]) continue;
    seen[e] = true;
    if (const MlpWeights* w = weights_.find(batch.layer, e)) bytes += w->bytes();
  }
  return bytes;
}

}  // namespace moeflow
