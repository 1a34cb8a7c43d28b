// Checks that need no model: exactly one router, every shard on a declared node, and no host:port
// taken twice (control, data and metrics ports of every node; API and [metrics] ports of the
// router node).
#include <algorithm>
#include <cctype>
#include <map>

#include "graph/did_you_mean.h"
#include "graph/graph_checks.h"

namespace moeflow::graph_detail {
namespace {

bool before(const SourceLocation& a, const SourceLocation& b) {
  return std::tie(a.line, a.column) < std::tie(b.line, b.column);
}

void check_routers(const GraphSpec& g, std::vector<Diagnostic>& out) {
  std::vector<const NodeSpec*> routers;
  for (const NodeSpec& n : g.nodes)
    if (n.router) routers.push_back(&n);
  std::sort(routers.begin(), routers.end(),
            [](const NodeSpec* a, const NodeSpec* b) { return before(a->where, b->where); });
  if (routers.empty()) {
    const auto first = std::min_element(
        g.nodes.begin(), g.nodes.end(),
        [](const NodeSpec& a, const NodeSpec& b) { return before(a.where, b.where); });
    out.push_back(
        {first == g.nodes.end() ? g.model.where : first->where, "no node runs the router",
         "set router = true on exactly one node (it runs gateway, scheduler and router)"});
    return;
  }
  for (size_t i = 1; i < routers.size(); ++i)
    out.push_back({routers[i]->where,
                   "node " + in_quotes(routers[i]->name) + " is a second router node (node " +
                       in_quotes(routers[0]->name) + " at line " +
                       std::to_string(routers[0]->where.line) + " is one already)",
                   "exactly one node has router = true"});
}

void check_shard_nodes(const GraphSpec& g, std::vector<Diagnostic>& out) {
  std::vector<std::string> names;
  for (const NodeSpec& n : g.nodes) names.push_back(n.name);
  for (const ShardSpec& s : g.shards) {
    if (s.node.empty() || g.find_node(s.node)) continue;
    std::string hint;
    if (g.implicit_node) {
      hint = "with no [nodes.NAME] tables everything runs in one node, " +
             in_quotes(kImplicitNodeName) + "; declare [nodes." + s.node + "] or leave node out";
    } else {
      const std::string guess = closest_match(s.node, names);
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      hint = guess.empty() ? "the nodes are: " + all : "did you mean " + in_quotes(guess) + "?";
    }
    out.push_back({s.node_where,
                   "shard " + in_quotes(s.name) + " is on node " + in_quotes(s.node) +
                       ", which is not declared",
                   std::move(hint)});
  }
}

// "localhost" and "127.0.0.1" are one address; case does not matter in host names.
std::string normal_host(std::string host) {
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host == "localhost" ? "127.0.0.1" : host;
}

struct Endpoint {
  std::string host;
  int port = 0;
  std::string what;  // "control_port of node \"a\""
  SourceLocation where;
};

void check_endpoints(const GraphSpec& g, std::vector<Diagnostic>& out) {
  std::vector<Endpoint> endpoints;
  for (const NodeSpec& n : g.nodes) {
    if (n.control_port)
      endpoints.push_back({n.host, n.control_port, "control_port of node " + in_quotes(n.name),
                           n.control_port_where});
    if (n.data_port)
      endpoints.push_back(
          {n.host, n.data_port, "data_port of node " + in_quotes(n.name), n.data_port_where});
    // An expert node's /metrics listens on its host (the router's is [metrics], below).
    if (n.metrics_port)
      endpoints.push_back({n.host, n.metrics_port, "metrics_port of node " + in_quotes(n.name),
                           n.metrics_port_where});
  }
  // The HTTP API and the metrics endpoint are served by the router node's process.
  const auto router =
      std::find_if(g.nodes.begin(), g.nodes.end(), [](const NodeSpec& n) { return n.router; });
  if (router != g.nodes.end()) {
    endpoints.push_back({router->host, g.api.port, "the [api] port", g.api.port_where});
    endpoints.push_back({router->host, g.metrics.port, "the [metrics] port", g.metrics.port_where});
  }
  std::stable_sort(endpoints.begin(), endpoints.end(),
                   [](const Endpoint& a, const Endpoint& b) { return before(a.where, b.where); });
  std::map<std::pair<std::string, int>, const Endpoint*> taken;
  for (const Endpoint& e : endpoints) {
    const auto [it, fresh] = taken.emplace(std::make_pair(normal_host(e.host), e.port), &e);
    if (fresh) continue;
    const Endpoint& first = *it->second;
    out.push_back({e.where,
                   e.host + ":" + std::to_string(e.port) + " is used twice: " + e.what + " and " +
                       first.what +
                       (first.where.line ? " (line " + std::to_string(first.where.line) + ")"
                                         : " (the default)"),
                   "every listening port on one host needs a number of its own"});
  }
}

}  // namespace

void check_topology(const GraphSpec& g, bool count_routers, std::vector<Diagnostic>& out) {
  if (count_routers) check_routers(g, out);
  check_shard_nodes(g, out);
  check_endpoints(g, out);
}

}  // namespace moeflow::graph_detail
