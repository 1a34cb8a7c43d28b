// metrics_targets and prometheus_targets_json: where Prometheus scrapes each node of a graph.
#include "graph/prometheus_targets.h"

#include <nlohmann/json.hpp>

namespace moeflow {
namespace {

// A bind address that means "every interface" cannot be dialled; the node's host can.
bool is_wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

std::string address(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

std::vector<MetricsTarget> metrics_targets(const GraphSpec& g) {
  std::vector<MetricsTarget> out;
  for (const NodeSpec& n : g.nodes) {
    if (n.router) {
      const std::string& host = is_wildcard(g.metrics.host) ? n.host : g.metrics.host;
      out.push_back({n.name, "router", address(host, g.metrics.port)});
    } else if (n.metrics_port) {
      out.push_back({n.name, "expert", address(n.host, n.metrics_port)});
    }
  }
  return out;
}

std::string prometheus_targets_json(const GraphSpec& g, const std::string& graph_name) {
  // Ordered: "targets" then "labels", as in Prometheus' documentation.
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const MetricsTarget& t : metrics_targets(g))
    entries.push_back({{"targets", nlohmann::ordered_json::array({t.address})},
                       {"labels", {{"node", t.node}, {"role", t.role}, {"graph", graph_name}}}});
  return entries.dump(2) + "\n";
}

}  // namespace moeflow
