#include "actors/link_metrics.h"

namespace moeflow {
namespace {

const char* kBytesHelp = "Bytes of all frames on a link, by channel and direction";
const char* kMessagesHelp = "Well-formed messages on a link, by channel and direction";

metrics::Labels link_labels(const std::string& peer, const std::string& channel,
                            const char* direction) {
  return {{"peer", peer}, {"channel", channel}, {"direction", direction}};
}

}  // namespace

LinkMetrics::LinkMetrics(metrics::Registry& registry, std::string peer, std::string channel)
    : peer_(std::move(peer)),
      channel_(std::move(channel)),
      bytes_in_(registry.counter("moeflow_link_bytes_total", kBytesHelp,
                                 link_labels(peer_, channel_, "in"))),
      bytes_out_(registry.counter("moeflow_link_bytes_total", kBytesHelp,
                                  link_labels(peer_, channel_, "out"))),
      messages_in_(registry.counter("moeflow_link_messages_total", kMessagesHelp,
                                    link_labels(peer_, channel_, "in"))),
      messages_out_(registry.counter("moeflow_link_messages_total", kMessagesHelp,
                                     link_labels(peer_, channel_, "out"))) {
  // Every reason from the start, at 0, so that rate() and alerts see the series before a drop.
  for (size_t r = 0; r < transport::kDropReasonCount; ++r)
    drops_[r] = &registry.counter(
        "moeflow_link_dropped_frames_total", "Frames refused by validation, by reason",
        {{"peer", peer_},
         {"channel", channel_},
         {"reason",
          std::string(transport::drop_reason_name(static_cast<transport::DropReason>(r)))}});
}

void LinkMetrics::publish(const transport::FrameCounters& now) {
  auto add = [](metrics::Counter& c, uint64_t now_value, uint64_t last_value) {
    if (now_value > last_value) c.add(static_cast<double>(now_value - last_value));
  };
  add(bytes_in_, now.bytes_in, last_.bytes_in);
  add(bytes_out_, now.bytes_out, last_.bytes_out);
  add(messages_in_, now.messages_in, last_.messages_in);
  add(messages_out_, now.messages_out, last_.messages_out);
  for (size_t r = 0; r < transport::kDropReasonCount; ++r) {
    if (now.drops[r] > last_.drops[r])
      drops_[r]->add(static_cast<double>(now.drops[r] - last_.drops[r]));
  }
  last_ = now;
}

PeerMetrics::PeerMetrics(metrics::Registry& registry, const std::string& peer)
    : up_(registry.gauge("moeflow_peer_up",
                         "1 when the expert node's handshake is done and heartbeats arrive",
                         {{"peer", peer}})),
      round_trip_(registry.histogram(
          "moeflow_link_round_trip_seconds", "Expert request sent to its reply received",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
          {{"peer", peer}})),
      failed_(registry.counter("moeflow_link_failed_requests_total",
                               "Expert requests that failed (error reply, peer down)",
                               {{"peer", peer}})) {}

}  // namespace moeflow
