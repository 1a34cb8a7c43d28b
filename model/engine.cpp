#include "model/engine.h"

#include <utility>

#include "core/progress.h"
#include "model/gpu_engine_step.h"

namespace moeflow {

std::unique_ptr<Engine> Engine::load(const std::filesystem::path& dir, const EngineOptions& opts) {
  std::unique_ptr<Engine> engine(new Engine());
  const ModelConfig cfg = load_model_config(dir);
  Progress progress("loading " + dir.filename().string(), 2 * cfg.num_layers, opts.progress);
  int64_t done = 0;
  auto step = [&](int64_t, int64_t, const std::string& what) { progress.update(++done, what); };
  engine->router_ = RouterModel::load(dir, opts.dtype, step, opts.cuda_device);
  engine->experts_ = ExpertShard::load(dir, opts.dtype, {}, step, opts.cuda_device);
  if (opts.cuda_device >= 0)
    engine->gpu_step_ = std::make_unique<GpuEngineStep>(*engine->router_, *engine->experts_);
  progress.finish();
  return engine;
}

Engine::~Engine() = default;

std::vector<float> Engine::forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                                   StepStats* stats, const ExpertBudget& budget) {
  const ModelConfig& cfg = config();
  if (!budget.is_full()) validate(budget, cfg);
  RouterModel& router = *router_;
  KvCacheState& cache = router_->cache();
  const StepPlan plan = plan_step(batch, cache, all_positions);
  const int64_t n = plan.layout.rows(), d = cfg.hidden_size;
  StepStats local;
  local.rows = n;
  local.weight_bytes = router.bytes_per_step();
  if (stats) local.expert_use.assign(cfg.num_layers * cfg.num_experts, 0);
  if (gpu_step_) {
    std::vector<float> logits = gpu_step_->run(plan, budget, local);
    local.weight_bytes += local.expert_bytes;
    for (const auto& s : plan.layout.sequences) cache.commit(s.seq_id, s.count);
    if (stats) *stats = std::move(local);
    return logits;
  }
  std::vector<float> hidden(n * d), routed;
  router.embed(plan.tokens.data(), n, hidden.data());
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    TokenBatch tb = router.attend_and_route(l, plan.layout, hidden.data(), budget);
    if (!cfg.layer_is_moe[l]) continue;
    routed.resize(n * d);
    local.expert_bytes += experts_->bytes_touched(tb);
    local.expert_rows += experts_->run(tb, routed.data());
    if (stats)
      for (int32_t e : tb.experts) ++local.expert_use[l * cfg.num_experts + e];
    router.combine(tb, routed.data(), hidden.data());
  }
  local.weight_bytes += local.expert_bytes;
  for (const auto& s : plan.layout.sequences) cache.commit(s.seq_id, s.count);
  std::vector<float> logits(plan.output_rows.size() * cfg.vocab_size);
  router.logits(hidden.data(), plan.output_rows, logits.data());
  if (stats) *stats = std::move(local);
  return logits;
}

}  // namespace moeflow
