#pragma once
// The transport's metrics (docs/metrics.md, "Transport"). LinkMetrics turns one socket's
// FrameCounters (plain counts owned by its I/O thread) into counters by adding what changed since
// the last publish; PeerMetrics holds what the router's bridge knows of each expert node: up or
// down, request round trips and failures.
#include <array>
#include <string>

#include "metrics/registry.h"
#include "transport/frame_counters.h"

namespace moeflow {

class LinkMetrics {
 public:
  // channel: "control" or "data"; peer: the node at the other end, or "any" on a listening node.
  LinkMetrics(metrics::Registry& registry, std::string peer, std::string channel);

  // Called by the socket's own thread with its current counts.
  void publish(const transport::FrameCounters& now);

 private:
  const std::string peer_, channel_;
  metrics::Counter &bytes_in_, &bytes_out_, &messages_in_, &messages_out_;
  std::array<metrics::Counter*, transport::kDropReasonCount> drops_{};  // by DropReason
  transport::FrameCounters last_;
};

class PeerMetrics {
 public:
  PeerMetrics(metrics::Registry& registry, const std::string& peer);

  void up(bool is_up) { up_.set(is_up ? 1.0 : 0.0); }
  void round_trip(double seconds) { round_trip_.observe(seconds); }
  void failed(uint64_t requests = 1) { failed_.add(static_cast<double>(requests)); }

 private:
  metrics::Gauge& up_;
  metrics::Histogram& round_trip_;
  metrics::Counter& failed_;
};

}  // namespace moeflow
