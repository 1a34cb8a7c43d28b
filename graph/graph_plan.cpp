#include "graph/graph_plan.h"

#include <map>
#include <set>
#include <sstream>

#include "graph/expert_ranges.h"
#include "model/model_config.h"

namespace moeflow {
namespace {

template <typename T>
void compare(std::vector<std::string>& out, const std::string& key, const T& before,
             const T& after) {
  if (before == after) return;
  std::ostringstream line;
  line << key << ": " << before << " -> " << after;
  out.push_back(line.str());
}

// Nodes: expert nodes come and go live; the router node, and any change to an existing node,
// need a restart.
void compare_nodes(const GraphSpec& before, const GraphSpec& after, GraphPlan& plan) {
  for (const NodeSpec& n : before.nodes) {
    if (after.find_node(n.name)) continue;
    if (n.router)
      plan.restart.push_back("node " + n.name +
                             " removed: it runs the router; restart every node with the new graph");
    else
      plan.nodes_removed.push_back(n.name);
  }
  for (const NodeSpec& n : after.nodes) {
    const NodeSpec* old = before.find_node(n.name);
    if (!old) {
      if (n.router)
        plan.restart.push_back("node " + n.name +
                               " added with router = true: restart every node with the new graph");
      else
        plan.nodes_added.push_back(n.name);
      continue;
    }
    std::vector<std::string> diffs;
    compare(diffs, "host", old->host, n.host);
    compare(diffs, "control_port", old->control_port, n.control_port);
    compare(diffs, "data_port", old->data_port, n.data_port);
    compare(diffs, "metrics_port", old->metrics_port, n.metrics_port);
    compare(diffs, "router", old->router, n.router);
    for (const std::string& d : diffs)
      plan.restart.push_back("node " + n.name + " " + d + ": restart node " + n.name);
  }
}

std::string resident_text(const SpeculativeSpec& sp) {
  if (sp.resident_count > 0) return std::to_string(sp.resident_count) + " (observed)";
  if (sp.resident.empty()) return "every expert";
  std::string out;
  for (const auto& layer : sp.resident) out += (out.empty() ? "" : " | ") + format_ranges(layer);
  return sp.resident_shared ? out : "[" + out + "]";
}

// [speculative] is applied live: the speculator takes the new settings between two rounds.
void compare_speculative(const SpeculativeSpec& b, const SpeculativeSpec& a,
                         std::vector<std::string>& out) {
  compare(out, "speculative.enabled", b.enabled, a.enabled);
  compare(out, "speculative.draft_top_k", b.draft_top_k, a.draft_top_k);
  compare(out, "speculative.resident", resident_text(b), resident_text(a));
  compare(out, "speculative.gamma", b.gamma, a.gamma);
  compare(out, "speculative.adaptive", b.adaptive, a.adaptive);
  compare(out, "speculative.gamma_min", b.gamma_min, a.gamma_min);
  compare(out, "speculative.gamma_max", b.gamma_max, a.gamma_max);
  compare(out, "speculative.draft_context", b.draft_context, a.draft_context);
}

void compare_settings(const GraphSpec& b, const GraphSpec& a, GraphPlan& plan) {
  compare(plan.settings, "scheduler.max_running", b.scheduler.max_running, a.scheduler.max_running);
  compare(plan.settings, "scheduler.max_waiting", b.scheduler.max_waiting, a.scheduler.max_waiting);
  compare(plan.settings, "scheduler.kv_budget_tokens", b.scheduler.kv_budget_tokens,
          a.scheduler.kv_budget_tokens);
  compare(plan.settings, "scheduler.prefill_chunk", b.scheduler.prefill_chunk,
          a.scheduler.prefill_chunk);
  compare(plan.settings, "scaling.enabled", b.scaling.enabled, a.scaling.enabled);
  compare(plan.settings, "scaling.policy", b.scaling.policy, a.scaling.policy);
  compare(plan.settings, "scaling.hot_load", b.scaling.hot_load, a.scaling.hot_load);
  compare(plan.settings, "scaling.cold_load", b.scaling.cold_load, a.scaling.cold_load);
  compare(plan.settings, "scaling.max_replicas", b.scaling.max_replicas, a.scaling.max_replicas);
  compare(plan.settings, "scaling.memory_mb", b.scaling.memory_mb, a.scaling.memory_mb);
  compare(plan.settings, "sampling.temperature", b.sampling.temperature, a.sampling.temperature);
  compare(plan.settings, "sampling.top_p", b.sampling.top_p, a.sampling.top_p);
  compare(plan.settings, "sampling.top_k", b.sampling.top_k, a.sampling.top_k);
  compare(plan.settings, "sampling.max_tokens", b.sampling.max_tokens, a.sampling.max_tokens);
  compare(plan.settings, "scaling.node_memory_mb", b.scaling.node_memory_mb,
          a.scaling.node_memory_mb);
  compare(plan.settings, "scaling.window_ms", b.scaling.window_ms, a.scaling.window_ms);
  compare(plan.settings, "scaling.cooldown_ms", b.scaling.cooldown_ms, a.scaling.cooldown_ms);
  compare_speculative(b.speculative, a.speculative, plan.settings);
  std::vector<std::string> restart;
  compare(restart, "model.path", b.model.path.string(), a.model.path.string());
  compare(restart, "model.dtype", b.model.dtype, a.model.dtype);
  compare(restart, "api.host", b.api.host, a.api.host);
  compare(restart, "api.port", b.api.port, a.api.port);
  compare(restart, "metrics.host", b.metrics.host, a.metrics.host);
  compare(restart, "metrics.port", b.metrics.port, a.metrics.port);
  compare(restart, "metrics.window_tokens", b.metrics.window_tokens, a.metrics.window_tokens);
  compare(restart, "metrics.per_expert", b.metrics.per_expert, a.metrics.per_expert);
  compare(restart, "metrics.collapse_effective_fraction", b.metrics.collapse_effective_fraction,
          a.metrics.collapse_effective_fraction);
  compare(restart, "metrics.collapse_dead_share", b.metrics.collapse_dead_share,
          a.metrics.collapse_dead_share);
  compare(restart, "timeouts.heartbeat_ms", b.timeouts.heartbeat_ms, a.timeouts.heartbeat_ms);
  compare(restart, "timeouts.peer_down_ms", b.timeouts.peer_down_ms, a.timeouts.peer_down_ms);
  compare(restart, "timeouts.request_ms", b.timeouts.request_ms, a.timeouts.request_ms);
  for (const std::string& r : restart) plan.restart.push_back(r + ": restart every node");
  if (b.model.router_device != a.model.router_device)
    plan.restart.push_back("model.router_device: " + b.model.router_device + " -> " +
                           a.model.router_device + ": restart the router node");
}

// Which experts of `layer` the shard holds (empty for a shard that does not exist).
std::set<int64_t> held(const ShardSpec* s, int64_t layer, const ModelConfig& model) {
  std::set<int64_t> out;
  if (!s) return out;
  for (int64_t e = 0; e < model.num_experts; ++e)
    if (s->owns(layer, e)) out.insert(e);
  return out;
}

void compare_shards(const GraphSpec& before, const GraphSpec& after, const ModelConfig& model,
                    GraphPlan& plan) {
  std::set<std::string> names;
  for (const ShardSpec& s : before.shards) names.insert(s.name);
  for (const ShardSpec& s : after.shards) names.insert(s.name);
  for (const std::string& name : names) {
    const ShardSpec* old = before.find_shard(name);
    const ShardSpec* now = after.find_shard(name);
    if (!old) plan.shards_added.push_back(name);
    if (!now) plan.shards_removed.push_back(name);
    if (old && now && old->device != now->device)
      plan.devices.push_back("shard " + name + " (node " + now->node + "): " + old->device +
                             " -> " + now->device);
    const std::string node = now ? now->node : old->node;
    for (int64_t l = 0; l < model.num_layers; ++l) {
      if (!model.layer_is_moe[l]) continue;
      const auto b = held(old, l, model), a = held(now, l, model);
      if (a == b) continue;
      ShardExpertChange c{name, node, l, {}, {}};
      for (int64_t e : a)
        if (!b.count(e)) c.gained.push_back(e);
      for (int64_t e : b)
        if (!a.count(e)) c.lost.push_back(e);
      plan.experts.push_back(std::move(c));
    }
  }
}

}  // namespace

GraphPlan plan_graph_change(const GraphSpec& before, const GraphSpec& after,
                            const ModelConfig& model) {
  GraphPlan plan;
  compare_nodes(before, after, plan);
  compare_settings(before, after, plan);
  compare_shards(before, after, model, plan);
  return plan;
}

std::string format_plan(const GraphPlan& plan) {
  std::ostringstream out;
  if (plan.empty()) return "no changes\n";
  for (const std::string& n : plan.nodes_added)
    out << "+ node " << n << " (start it with the new graph before applying)\n";
  for (const std::string& n : plan.nodes_removed)
    out << "- node " << n << " (stop it once the change is applied)\n";
  for (const std::string& s : plan.shards_added) out << "+ shard " << s << "\n";
  for (const std::string& s : plan.shards_removed) out << "- shard " << s << "\n";
  for (const ShardExpertChange& c : plan.experts) {
    out << "~ shard " << c.shard << " (node " << c.node << ") layer " << c.layer << ":";
    if (!c.gained.empty()) out << " gains experts " << format_ranges(c.gained);
    if (!c.gained.empty() && !c.lost.empty()) out << ";";
    if (!c.lost.empty()) out << " drops experts " << format_ranges(c.lost);
    out << "\n";
  }
  for (const std::string& d : plan.devices)
    out << "~ " << d << " (loads its experts there while the old copy serves)\n";
  for (const std::string& s : plan.settings) out << "~ " << s << "\n";
  for (const std::string& r : plan.restart) out << "! " << r << "\n";
  out << (plan.live() ? "applied live: yes (between decode steps, nothing restarts)\n"
                      : "applied live: no (a reload with these changes is refused; the lines "
                        "marked ! say what needs a restart)\n");
  return out.str();
}

}  // namespace moeflow
