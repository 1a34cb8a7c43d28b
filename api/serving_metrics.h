#pragma once
// The gateway's serving metrics (Prometheus, via metrics::Registry): requests by endpoint and
// status, requests in flight, time to first token, inter-token latency, request duration, prompt
// and generated tokens, finished requests by reason. Measured in the HTTP layer, off the decode
// hot path. Per-expert and per-link series come with the node metrics.
#include <string>

#include "metrics/registry.h"

namespace moeflow::api {

class ServingMetrics {
 public:
  explicit ServingMetrics(metrics::Registry& registry);

  void request_answered(const std::string& endpoint, int status);
  void request_started() { in_flight_.add(1); }
  void request_ended() { in_flight_.add(-1); }
  void first_token(double seconds) { ttft_.observe(seconds); }
  void next_token(double seconds) { itl_.observe(seconds); }
  void finished(const std::string& reason, double seconds, int64_t prompt_tokens,
                int64_t generated_tokens);

  metrics::Registry& registry() { return registry_; }

 private:
  metrics::Registry& registry_;
  metrics::Gauge& in_flight_;
  metrics::Histogram& ttft_;
  metrics::Histogram& itl_;
  metrics::Histogram& duration_;
  metrics::Counter& prompt_tokens_;
  metrics::Counter& generated_tokens_;
};

}  // namespace moeflow::api
