#include "transport/gpu_group.h"

namespace moeflow::transport {

std::vector<int> GpuGroup::ranks_of(std::string_view node) const {
  std::vector<int> ranks;
  for (size_t r = 0; r < members.size(); ++r)
    if (members[r].node == node) ranks.push_back(static_cast<int>(r));
  return ranks;
}

}  // namespace moeflow::transport
