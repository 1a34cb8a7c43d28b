#include "model/router_model.h"

#include "model/gpu_kv_cache.h"
#include "model/gpu_router_stage.h"

namespace moeflow {

std::unique_ptr<RouterModel> RouterModel::load(const std::filesystem::path& dir,
                                               const std::string& dtype,
                                               const LoadProgress& progress, int cuda_device) {
  return std::unique_ptr<RouterModel>(new RouterModel(dir, dtype, progress, cuda_device));
}

RouterModel::RouterModel(const std::filesystem::path& dir, const std::string& dtype,
                         const LoadProgress& progress, int cuda_device)
    : cfg_(load_model_config(dir)),
      ckpt_(Checkpoint::open(dir)),
      type_(parse_compute_type(dtype, ckpt_, cfg_)),
      weights_(load_router_weights(ckpt_, cfg_, type_, store_, progress)),
      cuda_device_(cuda_device < 0 ? -1 : cuda_device) {
  const int64_t kv_dim = cfg_.num_kv_heads * cfg_.head_dim;
  if (cuda_device_ < 0) {
    stage_ = std::make_unique<RouterStage>(cfg_, weights_);
    cache_ = std::make_unique<KvCache>(cfg_.num_layers, kv_dim);
  } else {
    gpu_stage_ = std::make_unique<GpuRouterStage>(cfg_, weights_, cuda_device_);
    gpu_cache_ = std::make_unique<GpuKvCache>(cfg_.num_layers, kv_dim, cuda_device_);
  }
}

RouterModel::~RouterModel() = default;

std::string RouterModel::device_name() const {
  return cuda_device_ < 0 ? "cpu" : "cuda:" + std::to_string(cuda_device_);
}

KvCacheState& RouterModel::cache() {
  if (cache_) return *cache_;
  return *gpu_cache_;
}

void RouterModel::embed(const int32_t* tokens, int64_t n, float* hidden) {
  if (stage_)
    stage_->embed(tokens, n, hidden);
  else
    gpu_stage_->embed(tokens, n, hidden);
}

TokenBatch RouterModel::attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                                         const ExpertBudget& budget) {
  if (stage_) return stage_->attend_and_route(layer, layout, hidden, *cache_, budget);
  return gpu_stage_->attend_and_route(layer, layout, hidden, *gpu_cache_, budget);
}

void RouterModel::combine(const TokenBatch& batch, const float* routed, float* hidden) {
  if (stage_)
    stage_->combine(batch, routed, hidden);
  else
    gpu_stage_->combine(batch, routed, hidden);
}

void RouterModel::logits(const float* hidden, const std::vector<int64_t>& rows, float* out) {
  if (stage_)
    stage_->logits(hidden, rows, out);
  else
    gpu_stage_->logits(hidden, rows, out);
}

int64_t RouterModel::bytes_per_step() const {
  return stage_ ? stage_->bytes_per_step() : gpu_stage_->bytes_per_step();
}

}  // namespace moeflow
