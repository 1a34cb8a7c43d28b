#pragma once
// The metrics every node exports about itself, and the metric settings taken from the graph's
// [metrics] table (docs/metrics.md).
#include <cstdint>
#include <string>

#include "graph/graph.h"
#include "metrics/registry.h"
#include "metrics/routing_recorder.h"

namespace moeflow {

// moeflow_node_info{node_name, node_role, graph_hash, model_hash} = 1. role: "router" or "expert".
// A value of 0 marks a graph the node no longer runs (after a live change).
void export_node_info(metrics::Registry& registry, const std::string& node, const std::string& role,
                      uint64_t graph_hash, uint64_t model_hash, double value = 1.0);

metrics::RoutingRecorderOptions routing_recorder_options(const MetricsSpec& spec);

// moeflow_graph_reloads_total{result}: result is applied, refused or unchanged.
void count_graph_reload(metrics::Registry& registry, const std::string& result);
metrics::Counter& graph_reload_counter(metrics::Registry& registry, const std::string& result);
// The three results at 0, so that dashboards see the series before the first reload.
void export_graph_reload_counters(metrics::Registry& registry);

}  // namespace moeflow
