// The small queries on GraphSpec and ShardSpec.
#include <algorithm>

#include "graph/graph.h"

namespace moeflow {

bool ShardSpec::owns(int64_t layer, int64_t expert) const {
  return (all_layers || std::binary_search(layers.begin(), layers.end(), layer)) &&
         (all_experts || std::binary_search(experts.begin(), experts.end(), expert));
}

const NodeSpec* GraphSpec::find_node(std::string_view name) const {
  for (const NodeSpec& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

const NodeSpec& GraphSpec::router_node() const {
  for (const NodeSpec& n : nodes)
    if (n.router) return n;
  throw Error(file.string() + ": the graph has no router node");
}

const ShardSpec* GraphSpec::find_shard(std::string_view name) const {
  for (const ShardSpec& s : shards)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<const ShardSpec*> GraphSpec::shards_on(std::string_view node) const {
  std::vector<const ShardSpec*> out;
  for (const ShardSpec& s : shards)
    if (s.node == node) out.push_back(&s);
  return out;
}

}  // namespace moeflow
