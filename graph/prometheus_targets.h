#pragma once
// The metrics endpoints of a graph as Prometheus file_sd targets (`moeflow graph targets`), so
// that Prometheus attaches the `node` and `role` labels and the series need none of their own.
#include <string>
#include <vector>

#include "graph/graph.h"

namespace moeflow {

struct MetricsTarget {
  std::string node;     // the node's name
  std::string role;     // "router" or "expert"
  std::string address;  // host:port as Prometheus dials it ("[::1]:9100" for IPv6)
};

// One target per node with a metrics endpoint, in node name order: the router node at the
// [metrics] port (on its host when [metrics] host is a wildcard such as 0.0.0.0, else on that
// bind address), expert nodes at host:metrics_port. Nodes without metrics_port are left out.
std::vector<MetricsTarget> metrics_targets(const GraphSpec& g);

// The targets as a file_sd JSON array: [{"targets": ["host:port"], "labels": {"node": ...,
// "role": ..., "graph": graph_name}}, ...], indented, ending in a newline.
std::string prometheus_targets_json(const GraphSpec& g, const std::string& graph_name);

}  // namespace moeflow
