// graph_to_dot: the topology as Graphviz, for `moeflow graph dot FILE | dot -Tsvg`.
#include <sstream>

#include "graph/expert_ranges.h"
#include "graph/graph.h"

namespace moeflow {
namespace {

// Text made safe inside a double-quoted DOT string.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string q(const std::string& s) {
  return "\"" + escape(s) + "\"";
}

std::string ranges_label(bool all, const std::vector<int64_t>& ids) {
  return all ? "all" : format_ranges(ids);
}

std::string shard_id(const ShardSpec& s) {
  return "shard:" + s.name;
}
std::string router_id(const NodeSpec& n) {
  return "router:" + n.name;
}

}  // namespace

std::string graph_to_dot(const GraphSpec& g) {
  std::ostringstream out;
  out << "digraph moeflow {\n"
      << "  rankdir=LR;\n"
      << "  node [shape=box, fontname=\"Helvetica\"];\n"
      << "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  for (const NodeSpec& n : g.nodes) {
    std::string label = n.name + "\\n" + escape(n.host);
    if (n.control_port) label += " control " + std::to_string(n.control_port);
    if (n.data_port) label += " data " + std::to_string(n.data_port);
    out << "  subgraph " << q("cluster_" + n.name) << " {\n"
        << "    label=\"" << label << "\";\n"
        << "    style=rounded;\n";
    if (n.router)
      out << "    " << q(router_id(n)) << " [label=\"router\\n(gateway, scheduler)\", "
          << "shape=ellipse, style=filled, fillcolor=\"#dde8f7\"];\n";
    for (const ShardSpec* s : g.shards_on(n.name))
      out << "    " << q(shard_id(*s)) << " [label=" << q("shard " + s->name) << "];\n";
    out << "  }\n";
  }
  const NodeSpec* router = nullptr;
  for (const NodeSpec& n : g.nodes)
    if (n.router && !router) router = &n;
  if (router)
    for (const ShardSpec& s : g.shards) {
      const std::string label = "layers " + ranges_label(s.all_layers, s.layers) + "\\nexperts " +
                                ranges_label(s.all_experts, s.experts) +
                                (s.device == "cpu" ? "" : "\\n" + s.device);
      out << "  " << q(router_id(*router)) << " -> " << q(shard_id(s)) << " [label=\"" << label
          << "\"];\n";
    }
  out << "}\n";
  return out.str();
}

}  // namespace moeflow
