#include "model/expert_shard.h"

namespace moeflow {

std::unique_ptr<ExpertShard> ExpertShard::load(const std::filesystem::path& dir,
                                               const std::string& dtype,
                                               const ExpertSelection& owned,
                                               const LoadProgress& progress) {
  return std::unique_ptr<ExpertShard>(new ExpertShard(dir, dtype, owned, progress));
}

ExpertShard::ExpertShard(const std::filesystem::path& dir, const std::string& dtype,
                         const ExpertSelection& owned, const LoadProgress& progress)
    : cfg_(load_model_config(dir)),
      ckpt_(Checkpoint::open(dir)),
      type_(parse_compute_type(dtype, ckpt_, cfg_)),
      weights_(load_expert_weights(ckpt_, cfg_, type_, store_, owned, progress)),
      stage_(std::make_unique<ExpertStage>(cfg_, weights_)) {
  for (const auto& layer : weights_.experts)
    for (const auto& e : layer) expert_count_ += !e.empty();
}

}  // namespace moeflow
