#include "transport/gpu_group.h"

#include <algorithm>

namespace moeflow::transport {

std::vector<int> GpuGroup::ranks_of(std::string_view node) const {
  std::vector<int> ranks;
  for (size_t r = 0; r < members.size(); ++r)
    if (members[r].node == node) ranks.push_back(static_cast<int>(r));
  return ranks;
}

std::vector<std::string> GpuGroup::nodes() const {
  std::vector<std::string> names;
  for (const GpuGroupMember& m : members)
    if (std::find(names.begin(), names.end(), m.node) == names.end()) names.push_back(m.node);
  return names;
}

bool GpuGroupReady::all_formed() const {
  return std::all_of(devices.begin(), devices.end(),
                     [](const GpuDeviceOutcome& d) { return d.formed(); });
}

}  // namespace moeflow::transport
