// graph_hash: FNV-1a over a canonical text of the graph's meaning. Nodes and shards are already
// in name order and ranges are expanded, so neither layout, comments, key order nor "0-3" vs
// "0,1,2,3" changes it. Locations and the resolved model path (which depends on where the file
// lies) are left out.
#include <iomanip>
#include <sstream>

#include "graph/expert_ranges.h"
#include "graph/graph.h"

namespace moeflow {
namespace {

std::string speculative_fields(const SpeculativeSpec& sp) {
  std::ostringstream out;
  out << "speculative;" << sp.enabled << ',' << sp.draft_top_k << ',' << sp.resident_shared << ','
      << sp.resident_count << ',' << sp.gamma << ',' << sp.adaptive << ',' << sp.gamma_min << ','
      << sp.gamma_max << ',' << sp.draft_context << ';' << sp.resident.size() << ';';
  for (const auto& layer : sp.resident) out << format_ranges(layer) << ';';
  return out.str();
}

// Empty for the default settings, so that graphs without [speculative] keep the hash they had
// before the section existed.
std::string speculative_text(const SpeculativeSpec& sp) {
  static const std::string defaults = speculative_fields(SpeculativeSpec{});
  std::string text = speculative_fields(sp);
  return text == defaults ? "" : text;
}

std::string canonical_text(const GraphSpec& g) {
  std::ostringstream out;
  // Lengths before strings, so that no value can imitate a field boundary.
  const auto str = [&](const std::string& s) { out << s.size() << ':' << s << ';'; };
  out << "moeflow-graph-v1;";
  str(g.model.path_text);
  str(g.model.dtype);
  out << "nodes " << g.nodes.size() << ';';
  for (const NodeSpec& n : g.nodes) {
    str(n.name);
    str(n.host);
    out << n.control_port << ',' << n.data_port << ',' << n.router << ',' << n.metrics_port << ';';
  }
  out << "shards " << g.shards.size() << ';';
  for (const ShardSpec& s : g.shards) {
    str(s.name);
    str(s.node);
    str(s.all_layers ? "all" : format_ranges(s.layers));
    str(s.all_experts ? "all" : format_ranges(s.experts));
    str(s.device);
  }
  str(g.api.host);
  out << g.api.port << ';';
  str(g.metrics.host);
  out << g.metrics.port << ',' << g.metrics.window_tokens << ',' << g.metrics.per_expert << ','
      << std::setprecision(17) << g.metrics.collapse_effective_fraction << ','
      << g.metrics.collapse_dead_share << ';' << g.timeouts.heartbeat_ms << ','
      << g.timeouts.peer_down_ms << ',' << g.timeouts.request_ms << ';' << g.scheduler.max_running
      << ',' << g.scheduler.max_waiting << ',' << g.scheduler.kv_budget_tokens << ','
      << g.scheduler.prefill_chunk << ';' << g.scaling.enabled << ',' << g.scaling.policy << ','
      << g.scaling.hot_load << ',' << g.scaling.cold_load << ',' << g.scaling.max_replicas << ','
      << g.scaling.memory_mb << ',' << g.scaling.window_ms << ',' << g.scaling.cooldown_ms << ';';
  // Added after the first graphs were hashed: only a set value changes the hash.
  if (g.scaling.node_memory_mb != 0) out << "node_memory_mb=" << g.scaling.node_memory_mb << ';';
  out << speculative_text(g.speculative);
  // Added after the first graphs were hashed: only values off the defaults change the hash.
  const SamplingSpec defaults;
  if (g.sampling.temperature != defaults.temperature || g.sampling.top_p != defaults.top_p ||
      g.sampling.top_k != defaults.top_k || g.sampling.max_tokens != defaults.max_tokens)
    out << "sampling=" << g.sampling.temperature << ',' << g.sampling.top_p << ','
        << g.sampling.top_k << ',' << g.sampling.max_tokens << ';';
  return out.str();
}

}  // namespace

uint64_t graph_hash(const GraphSpec& g) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : canonical_text(g)) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace moeflow
