#include "transport/memory_retention.h"

#include <malloc.h>

#include <algorithm>
#include <climits>

namespace moeflow::transport {

bool retain_freed_buffers(uint64_t retain_bytes) {
  // 32 MiB is glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); setting it
  // also turns off the dynamic threshold, so the behaviour no longer depends on history.
  constexpr int kMmapThreshold = 32 << 20;
  const int trim = static_cast<int>(std::min<uint64_t>(retain_bytes, INT_MAX));
  return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim) == 1;
}

}  // namespace moeflow::transport
