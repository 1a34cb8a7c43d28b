#include "graph/replica_device.h"

#include <map>

#include "graph/device_check.h"

namespace moeflow {

std::string replica_device(const GraphSpec& g, const std::string& node) {
  std::map<int, int> users;  // GPU index -> shards (and router stage) on it; ordered by index
  for (const ShardSpec* s : g.shards_on(node))
    if (const int index = cuda_device_index(s->device); index >= 0) ++users[index];
  const NodeSpec* spec = g.find_node(node);
  if (spec && spec->router)
    if (const int index = cuda_device_index(g.model.router_device); index >= 0) ++users[index];
  int best = -1, most = 0;
  for (const auto& [index, count] : users)
    if (count > most) {  // strictly more: the lowest index keeps a tie
      best = index;
      most = count;
    }
  return best < 0 ? "cpu" : "cuda:" + std::to_string(best);
}

}  // namespace moeflow
