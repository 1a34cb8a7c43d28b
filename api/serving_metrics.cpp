#include "api/serving_metrics.h"

namespace moeflow::api {

ServingMetrics::ServingMetrics(metrics::Registry& registry)
    : registry_(registry),
      in_flight_(registry.gauge("moeflow_requests_running",
                                "Generation requests being answered by the HTTP API")),
      ttft_(registry.histogram("moeflow_time_to_first_token_seconds",
                               "Time from receiving a request to its first generated token",
                               {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      itl_(registry.histogram("moeflow_inter_token_latency_seconds",
                              "Time between consecutive generated tokens of a request",
                              {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})),
      duration_(registry.histogram("moeflow_request_duration_seconds",
                                   "End-to-end time of a generation request",
                                   {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})),
      prompt_tokens_(registry.counter("moeflow_prompt_tokens_total",
                                      "Prompt tokens of finished generation requests")),
      generated_tokens_(registry.counter("moeflow_generation_tokens_total",
                                         "Tokens generated for finished requests")) {}

void ServingMetrics::request_answered(const std::string& endpoint, int status) {
  registry_
      .counter("moeflow_http_requests_total", "HTTP API requests by endpoint and status code",
               {{"endpoint", endpoint}, {"status", std::to_string(status)}})
      .inc();
}

void ServingMetrics::finished(const std::string& reason, double seconds, int64_t prompt_tokens,
                              int64_t generated_tokens) {
  registry_
      .counter("moeflow_requests_finished_total", "Finished generation requests by reason",
               {{"reason", reason}})
      .inc();
  duration_.observe(seconds);
  prompt_tokens_.add(static_cast<double>(prompt_tokens));
  generated_tokens_.add(static_cast<double>(generated_tokens));
}

}  // namespace moeflow::api
