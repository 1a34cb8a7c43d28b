#include "actors/scheduler_metrics.h"

namespace moeflow {

SchedulerMetrics::SchedulerMetrics(std::shared_ptr<metrics::Registry> registry, int64_t max_running,
                                   int64_t max_waiting, int64_t kv_budget_tokens)
    : running_(
          registry->gauge("moeflow_scheduler_running_sequences", "Sequences in the running batch")),
      waiting_(registry->gauge("moeflow_scheduler_waiting_requests",
                               "Requests queued for a place in the batch")),
      kv_reserved_(registry->gauge("moeflow_kv_cache_reserved_tokens",
                                   "KV-cache tokens reserved by running sequences")),
      kv_usage_(registry->gauge("moeflow_kv_cache_usage_ratio",
                                "KV-cache tokens reserved over the budget")),
      refused_(registry->counter("moeflow_scheduler_refused_requests_total",
                                 "Requests refused because the queue was full")),
      steps_(registry->counter("moeflow_scheduler_steps_total", "Forward steps run")),
      step_seconds_(registry->histogram(
          "moeflow_step_duration_seconds", "One forward step of the whole batch",
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10})),
      kv_budget_(static_cast<double>(kv_budget_tokens)),
      max_running_(registry->gauge("moeflow_scheduler_max_running",
                                   "The batch limit ([scheduler] max_running)")),
      max_waiting_(registry->gauge("moeflow_scheduler_max_waiting",
                                   "The queue limit ([scheduler] max_waiting)")),
      kv_budget_gauge_(registry->gauge("moeflow_kv_cache_budget_tokens",
                                       "The KV-cache budget ([scheduler] kv_budget_tokens)")),
      registry_(std::move(registry)) {
  limits(max_running, max_waiting, kv_budget_tokens);
}

void SchedulerMetrics::limits(int64_t max_running, int64_t max_waiting, int64_t kv_budget_tokens) {
  max_running_.set(static_cast<double>(max_running));
  max_waiting_.set(static_cast<double>(max_waiting));
  kv_budget_ = static_cast<double>(kv_budget_tokens);
  kv_budget_gauge_.set(kv_budget_);
}

void SchedulerMetrics::queues(int64_t running, int64_t waiting, int64_t kv_reserved) {
  running_.set(static_cast<double>(running));
  waiting_.set(static_cast<double>(waiting));
  kv_reserved_.set(static_cast<double>(kv_reserved));
  kv_usage_.set(kv_budget_ > 0 ? static_cast<double>(kv_reserved) / kv_budget_ : 0.0);
}

void SchedulerMetrics::step_done(double seconds) {
  steps_.inc();
  step_seconds_.observe(seconds);
}

}  // namespace moeflow
