#include "transport/gpu_group_state.h"

#include <cstdio>
#include <utility>

namespace moeflow::transport {

std::string_view gpu_group_state_name(GpuGroupState state) {
  switch (state) {
    case GpuGroupState::none:
      return "none";
    case GpuGroupState::forming:
      return "forming";
    case GpuGroupState::formed:
      return "formed";
    case GpuGroupState::failed:
      return "failed";
  }
  return "unknown";
}

GpuGroupLog gpu_group_log_or_stderr(GpuGroupLog log) {
  if (log) return log;
  return [](const std::string& line) { std::fprintf(stderr, "gpu group: %s\n", line.c_str()); };
}

}  // namespace moeflow::transport
