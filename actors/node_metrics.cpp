#include "actors/node_metrics.h"

#include "transport/handshake.h"

namespace moeflow {

void export_graph_reload_counters(metrics::Registry& registry) {
  for (const char* result : {"applied", "refused", "unchanged"})
    graph_reload_counter(registry, result);
}

void export_node_info(metrics::Registry& registry, const std::string& node, const std::string& role,
                      uint64_t graph_hash, uint64_t model_hash, double value) {
  registry
      .gauge("moeflow_node_info", "Which node, graph and model this process runs (always 1)",
             {{"node_name", node},
              {"node_role", role},
              {"graph_hash", transport::format_hash(graph_hash)},
              {"model_hash", transport::format_hash(model_hash)}})
      .set(value);
}

void count_graph_reload(metrics::Registry& registry, const std::string& result) {
  graph_reload_counter(registry, result).inc();
}

metrics::Counter& graph_reload_counter(metrics::Registry& registry, const std::string& result) {
  return registry.counter(
      "moeflow_graph_reloads_total",
      "Graph reloads (SIGHUP or a saved graph file) by result: applied, refused, "
      "unchanged",
      {{"result", result}});
}

metrics::RoutingRecorderOptions routing_recorder_options(const MetricsSpec& spec) {
  metrics::RoutingRecorderOptions options;
  options.window_tokens = static_cast<std::size_t>(spec.window_tokens);
  options.per_expert = spec.per_expert;
  options.thresholds.effective_experts_fraction = spec.collapse_effective_fraction;
  options.thresholds.dead_share = spec.collapse_dead_share;
  return options;
}

}  // namespace moeflow
