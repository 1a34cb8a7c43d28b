#pragma once
// Traffic and drop counts of one socket: a plain stats struct, owned by the socket's thread and
// copied out to the metrics owner (no atomics; one socket, one thread).
#include <array>
#include <cstdint>

#include "transport/drop_reason.h"

namespace moeflow::transport {

struct FrameCounters {
  uint64_t messages_in = 0;  // well-formed messages received (drops not included)
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;  // all frames of every received message, dropped ones included
  uint64_t bytes_out = 0;
  std::array<uint64_t, kDropReasonCount> drops{};  // indexed by DropReason

  void count_drop(DropReason reason) { ++drops[static_cast<size_t>(reason)]; }
  uint64_t dropped(DropReason reason) const { return drops[static_cast<size_t>(reason)]; }
  uint64_t drops_total() const {
    uint64_t n = 0;
    for (uint64_t d : drops) n += d;
    return n;
  }
};

}  // namespace moeflow::transport
