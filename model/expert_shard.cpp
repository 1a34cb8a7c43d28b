#include "model/expert_shard.h"

#include <chrono>

#include "model/gpu_expert_stage.h"

namespace moeflow {

std::unique_ptr<ExpertShard> ExpertShard::load(const std::filesystem::path& dir,
                                               const std::string& dtype,
                                               const ExpertSelection& owned,
                                               const LoadProgress& progress, int cuda_device) {
  return std::unique_ptr<ExpertShard>(new ExpertShard(dir, dtype, owned, progress, cuda_device));
}

ExpertShard::ExpertShard(const std::filesystem::path& dir, const std::string& dtype,
                         const ExpertSelection& owned, const LoadProgress& progress,
                         int cuda_device)
    : cfg_(load_model_config(dir)),
      ckpt_(Checkpoint::open(dir)),
      type_(parse_compute_type(dtype, ckpt_, cfg_)),
      weights_(load_expert_weights(ckpt_, cfg_, type_, store_, owned, progress)),
      cuda_device_(cuda_device < 0 ? -1 : cuda_device) {
  if (cuda_device_ < 0)
    cpu_ = std::make_unique<ExpertStage>(cfg_, weights_);
  else
    gpu_ = std::make_unique<GpuExpertStage>(cfg_, weights_, cuda_device_);
  for (const auto& layer : weights_.experts)
    for (const auto& e : layer) expert_count_ += !e.empty();
}

ExpertShard::~ExpertShard() = default;

std::string ExpertShard::device_name() const {
  return cuda_device_ < 0 ? "cpu" : "cuda:" + std::to_string(cuda_device_);
}

int64_t ExpertShard::run(const TokenBatch& batch, float* out) {
  if (cpu_) return cpu_->run(batch, out);
  const auto start = std::chrono::steady_clock::now();
  const int64_t pairs = gpu_->run(batch, out);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  gpu_pairs_.assign(cfg_.num_experts, 0);  // reused: no allocation per batch
  for (int32_t e : batch.experts)
    if (holds(batch.layer, e)) ++gpu_pairs_[e];
  gpu_work_.clear();
  for (int64_t e = 0; e < cfg_.num_experts; ++e)  // in expert order, as ExpertStage reports
    if (gpu_pairs_[e] > 0) gpu_work_.push_back({e, gpu_pairs_[e], seconds * gpu_pairs_[e] / pairs});
  return pairs;
}

const std::vector<ExpertWork>& ExpertShard::last_work() const {
  return cpu_ ? cpu_->last_work() : gpu_work_;
}

int64_t ExpertShard::bytes_touched(const TokenBatch& batch) const {
  std::vector<bool> seen(cfg_.num_experts, false);
  int64_t bytes = 0;
  for (int32_t e : batch.experts) {
    if (e < 0 || e >= cfg_.num_experts || seen[e]) continue;
    seen[e] = true;
    bytes += expert_bytes(batch.layer, e);
  }
  return bytes;
}

int64_t ExpertShard::expert_bytes(int64_t layer, int64_t expert) const {
  const MlpWeights* w = weights_.find(layer, expert);
  if (!w) return 0;
  // A GPU shard holds bf16 copies whatever the loaded type.
  const int64_t elements =
      w->gate.rows * w->gate.cols + w->up.rows * w->up.cols + w->down.rows * w->down.cols;
  return gpu_ ? elements * 2 : w->bytes();
}

}  // namespace moeflow
