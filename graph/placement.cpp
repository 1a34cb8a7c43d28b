// make_placement: the (layer, expert) -> shards table the router dispatches by.
#include "graph/graph.h"
#include "model/model_config.h"

namespace moeflow {

bool same_experts(const ShardSpec& a, const ShardSpec& b, const ModelConfig& model) {
  for (int64_t l = 0; l < model.num_layers; ++l)
    for (int64_t e = 0; e < model.num_experts; ++e)
      if (a.owns(l, e) != b.owns(l, e)) return false;
  return true;
}

bool same_shard(const ShardSpec& a, const ShardSpec& b, const ModelConfig& model) {
  return a.device == b.device && same_experts(a, b, model);
}

Placement make_placement(const GraphSpec& g, const ModelConfig& model) {
  Placement p;
  p.owners.resize(static_cast<size_t>(model.num_layers));
  for (int64_t l = 0; l < model.num_layers; ++l) {
    if (!model.layer_is_moe.at(l)) continue;
    auto& layer = p.owners[l];
    layer.resize(static_cast<size_t>(model.num_experts));
    for (int64_t e = 0; e < model.num_experts; ++e)
      for (size_t s = 0; s < g.shards.size(); ++s)
        if (g.shards[s].owns(l, e)) layer[e].push_back(static_cast<int>(s));
  }
  return p;
}

}  // namespace moeflow
