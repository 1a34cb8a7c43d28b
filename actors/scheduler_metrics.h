#pragma once
// The scheduler's metrics (docs/metrics.md, "Scheduler and KV cache"): batch and queue sizes with
// their limits, KV-cache reservation against its budget, refused requests, steps and their time.
// Updated by the scheduler actor between steps.
#include <cstdint>
#include <memory>

#include "metrics/registry.h"

namespace moeflow {

class SchedulerMetrics {
 public:
  // Keeps `registry` alive as long as these metrics.
  SchedulerMetrics(std::shared_ptr<metrics::Registry> registry, int64_t max_running,
                   int64_t max_waiting, int64_t kv_budget_tokens);

  void queues(int64_t running, int64_t waiting, int64_t kv_reserved);
  void refused() { refused_.inc(); }
  void limits(int64_t max_running, int64_t max_waiting, int64_t kv_budget_tokens);
  void step_done(double seconds);

 private:
  metrics::Gauge& running_;
  metrics::Gauge& waiting_;
  metrics::Gauge& kv_reserved_;
  metrics::Gauge& kv_usage_;
  metrics::Counter& refused_;
  metrics::Counter& steps_;
  metrics::Histogram& step_seconds_;
  double kv_budget_;
  metrics::Gauge& max_running_;
  metrics::Gauge& max_waiting_;
  metrics::Gauge& kv_budget_gauge_;
  std::shared_ptr<metrics::Registry> registry_;
};

}  // namespace moeflow
