#include "model/expert_stage.h"

#include <algorithm>
#include <chrono>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "model/swiglu.h"

namespace moeflow {

ExpertStage::ExpertStage(const ModelConfig& cfg, const ExpertWeights& weights)
    : cfg_(cfg), weights_(weights), groups_(cfg.num_experts) {}

void ExpertStage::run_group(const TokenBatch& batch, Group& g) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t d = batch.hidden_size, k = batch.top_k;
  const int64_t m = static_cast<int64_t>(g.slots.size());
  g.input.resize(m * d);
  g.output.resize(m * d);
  for (int64_t i = 0; i < m; ++i) {
    const float* src = batch.row(g.slots[i] / k);
    std::copy(src, src + d, g.input.data() + i * d);
  }
  swiglu(*weights_.find(batch.layer, g.expert), g.input.data(), m, g.output.data(), g.scratch);
  g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int64_t ExpertStage::run(const TokenBatch& batch, float* out) {
  const int64_t n = batch.size(), d = batch.hidden_size, k = batch.top_k;
  for (auto& g : groups_) g.slots.clear();
  for (int64_t s = 0; s < n * k; ++s) {
    const int32_t e = batch.experts[s];
    if (e >= 0 && e < cfg_.num_experts && holds(batch.layer, e)) groups_[e].slots.push_back(s);
  }
  std::vector<Group*> active;
  int64_t largest = 0;
  for (int64_t e = 0; e < cfg_.num_experts; ++e) {
    if (groups_[e].slots.empty()) continue;
    groups_[e].expert = e;
    active.push_back(&groups_[e]);
    largest = std::max<int64_t>(largest, groups_[e].slots.size());
  }
  const int64_t count = static_cast<int64_t>(active.size());
  // Each thread runs whole experts, so threads never wait on each other inside an expert and
  // each expert's weights stream through one core. With one expert, or one expert far larger
  // than the rest, experts run one after another, each spread over all threads.
  int64_t total = 0;
  for (Group* g : active) total += static_cast<int64_t>(g->slots.size());
  if (count > 1 && (largest < kernels::kGemmMinRows || 2 * largest <= total)) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) run_group(batch, *active[i]);
  } else {
    for (Group* g : active) run_group(batch, *g);
  }
  std::fill(out, out + n * d, 0.0f);
  int64_t computed = 0;
  last_work_.clear();
  for (Group* g : active) {
    last_work_.push_back({g->expert, static_cast<int64_t>(g->slots.size()), g->seconds});
    for (size_t i = 0; i < g->slots.size(); ++i)
      kernels::axpy(batch.weights[g->slots[i]], g->output.data() + i * d,
                    out + (g->slots[i] / k) * d, d);
    computed += static_cast<int64_t>(g->slots.size());
  }
  return computed;
}

}  // namespace moeflow
