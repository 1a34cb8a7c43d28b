#include "model/router_model.h"

namespace moeflow {

std::unique_ptr<RouterModel> RouterModel::load(const std::filesystem::path& dir,
                                               const std::string& dtype,
                                               const LoadProgress& progress) {
  return std::unique_ptr<RouterModel>(new RouterModel(dir, dtype, progress));
}

RouterModel::RouterModel(const std::filesystem::path& dir, const std::string& dtype,
                         const LoadProgress& progress)
    : cfg_(load_model_config(dir)),
      ckpt_(Checkpoint::open(dir)),
      type_(parse_compute_type(dtype, ckpt_, cfg_)),
      weights_(load_router_weights(ckpt_, cfg_, type_, store_, progress)),
      stage_(std::make_unique<RouterStage>(cfg_, weights_)),
      cache_(cfg_.num_layers, cfg_.num_kv_heads * cfg_.head_dim) {}

}  // namespace moeflow
