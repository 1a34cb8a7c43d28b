#include "actors/autoscaler.h"

#include <algorithm>

#include "actors/added_replicas.h"
#include "core/error.h"
#include "graph/replica_device.h"
#include "scaling/replica_placement.h"

namespace moeflow {

using Clock = std::chrono::steady_clock;

namespace {

std::string describe_expert(int64_t layer, int64_t expert) {
  return "layer " + std::to_string(layer) + " expert " + std::to_string(expert);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

struct Autoscaler::Candidates {
  std::vector<std::string> names;  // nodes holding graph shards, in graph order
  PlacementLoad load;              // tokens left empty
};

Autoscaler::Autoscaler(RouterNode& node, Log log)
    : node_(node), log_(std::move(log)), last_eval_(Clock::now()) {
  // Every action and reason from the start, at 0, so that rate() and dashboards see the series.
  for (const char* action : {"add", "retire", "failed"})
    for (const char* reason : {"hot", "cold", "idle", "eplb"}) series(action, reason);
  node_.routing->flush();
  last_totals_ = node_.routing->token_totals();
}

metrics::Counter& Autoscaler::series(const char* action, const std::string& reason) {
  return node_.registry->counter("moeflow_autoscaler_actions_total",
                                 "Autoscaler decisions by action and reason",
                                 {{"action", action}, {"reason", reason}});
}

void Autoscaler::count(const char* action, const std::string& reason) {
  series(action, reason).inc();
}

Autoscaler::Candidates Autoscaler::candidates(const Placement& placement) const {
  const GraphSpec& g = node_.graph;
  Candidates c;
  std::vector<int> index_of(g.shards.size(), -1);
  for (const NodeSpec& n : g.nodes) {
    const auto shards = g.shards_on(n.name);
    if (shards.empty()) continue;
    for (const ShardSpec* s : shards)
      index_of[s - g.shards.data()] = static_cast<int>(c.names.size());
    c.names.push_back(n.name);
  }
  c.load.nodes = static_cast<int>(c.names.size());
  c.load.holders.resize(placement.owners.size());
  for (size_t l = 0; l < placement.owners.size(); ++l) {
    c.load.holders[l].resize(placement.owners[l].size());
    for (size_t e = 0; e < placement.owners[l].size(); ++e)
      for (int s : placement.owners[l][e]) c.load.holders[l][e].push_back(index_of[s]);
  }
  // Each node's own budget (node_memory_mb), less what it already holds or is loading.
  const ScalingSpec& spec = g.scaling;
  if (spec.node_memory_mb > 0 && node_.expert_mb > 0)
    c.load.room.assign(c.names.size(), static_cast<int>(static_cast<double>(spec.node_memory_mb) /
                                                        node_.expert_mb));
  auto held_by = [&](int64_t layer, int64_t expert, const std::string& node) {
    const auto it = std::find(c.names.begin(), c.names.end(), node);
    if (it == c.names.end()) return;
    const int n = static_cast<int>(it - c.names.begin());
    c.load.holders.at(layer).at(expert).push_back(n);
    if (!c.load.room.empty()) --c.load.room[static_cast<size_t>(n)];
  };
  const std::string& me = g.router_node().name;
  for (const auto& r : node_.added) held_by(r.layer, r.expert, r.node.empty() ? me : r.node);
  for (const auto& l : loading_) held_by(l.action.layer, l.action.expert, l.node);
  return c;
}

std::vector<ScalingAction> Autoscaler::poll() {
  bool changed = collect_loaded();
  const ScalingSpec& spec = node_.graph.scaling;
  const auto now = Clock::now();
  std::vector<ScalingAction> actions;
  std::vector<expert_shard_actor> stopped;
  if (now - last_eval_ >= std::chrono::milliseconds(spec.window_ms)) {
    last_eval_ = now;
    node_.routing->flush();
    const auto totals = node_.routing->token_totals();
    const ModelConfig& cfg = node_.pipeline.config;
    const Placement placement = make_placement(node_.graph, cfg);
    ScalingInput in;
    in.expert_mb = node_.expert_mb;
    for (size_t l = 0; l < totals.size(); ++l) {
      const size_t experts = totals[l].size();
      in.tokens.emplace_back(experts, 0.0);
      in.graph_replicas.emplace_back(experts, 0);
      in.added.emplace_back(experts, 0);
      in.retirable.emplace_back(experts, 0);
      for (size_t e = 0; e < experts; ++e) {
        const uint64_t before =
            l < last_totals_.size() && e < last_totals_[l].size() ? last_totals_[l][e] : 0;
        in.tokens[l][e] = static_cast<double>(totals[l][e] - before);
        in.graph_replicas[l][e] = static_cast<int>(placement.owners_of(l, e).size());
      }
    }
    last_totals_ = totals;
    for (const auto& r : node_.added) {
      ++in.added[r.layer][r.expert];
      if (now - r.created >= std::chrono::milliseconds(spec.cooldown_ms))
        ++in.retirable[r.layer][r.expert];
    }
    for (const auto& l : loading_) ++in.added[l.action.layer][l.action.expert];
    if (spec.enabled) actions = decide_scaling(spec, in);

    Candidates c = candidates(placement);
    c.load.tokens = in.tokens;
    const std::vector<int> targets = place_replicas(actions, c.load);
    const std::string& me = node_.graph.router_node().name;
    const bool single_process = node_.peer_of.empty();
    for (size_t i = 0; i < actions.size(); ++i) {
      const ScalingAction& a = actions[i];
      if (a.kind == ScalingAction::Kind::retire) {
        retire(a, stopped);
        changed = true;
      } else if (targets[i] >= 0 && c.names[targets[i]] != me) {
        add_on(a, c.names[targets[i]]);
      } else if (targets[i] >= 0 || single_process) {
        changed = add_here(a) || changed;
      } else {
        count("failed", a.reason);
        log_("autoscaler: no node can take a replica of " + describe_expert(a.layer, a.expert) +
             " (every node with shards holds it or has no room in node_memory_mb)");
      }
    }
  }
  if (changed)
    node_.swap_placement(node_.graph, node_.pipeline.shards,
                         make_placement(node_.graph, node_.pipeline.config).owners);

  // Retired replicas stop once the router no longer sends them rows: after the swap.
  for (const auto& actor : stopped) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  for (const Drop& d : drops_)
    node_.bridge->request_replica(d.peer, false, d.layer, static_cast<int32_t>(d.expert));
  drops_.clear();
  return actions;
}

bool Autoscaler::add_here(const ScalingAction& a) {
  const auto started = Clock::now();
  const std::string& here = node_.graph.router_node().name;
  const std::string where = "on the router node, " + replica_device(node_.graph, here);
  expert_shard_actor actor;
  try {
    actor = spawn_added_replica(*node_.system, node_.graph, here, node_.pipeline.config,
                                node_.registry, a.layer, a.expert);
  } catch (const Error& e) {  // e.g. the GPU is full: the other decisions of the window go on
    count("failed", a.reason);
    log_("autoscaler: could not add a replica of " + describe_expert(a.layer, a.expert) + " " +
         where + ": " + e.what());
    return false;
  }
  node_.added.push_back({a.layer, a.expert, std::move(actor), Clock::now(), "", -1});
  count("add", a.reason);
  log_("autoscaler: add a replica of " + describe_expert(a.layer, a.expert) + " " + where + " (" +
       a.reason + ": " + a.detail + "); weights loaded in " +
       std::to_string(static_cast<int>(ms_since(started))) + " ms");
  return true;
}

void Autoscaler::add_on(const ScalingAction& a, const std::string& node) {
  const int peer = node_.peer_of.at(node);
  log_("autoscaler: asking node " + node + " to load a replica of " +
       describe_expert(a.layer, a.expert) + " (" + a.reason + ": " + a.detail + ")");
  loading_.push_back(
      {a, node, peer,
       node_.bridge->request_replica(peer, true, a.layer, static_cast<int32_t>(a.expert)),
       Clock::now()});
}

bool Autoscaler::collect_loaded() {
  bool joined = false;
  for (auto it = loading_.begin(); it != loading_.end();) {
    if (it->answer.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const std::string failure = it->answer.get();
    const ScalingAction& a = it->action;
    if (failure.empty()) {
      node_.added.push_back({a.layer, a.expert, {}, Clock::now(), it->node, it->peer});
      count("add", a.reason);
      log_("autoscaler: node " + it->node + " serves a replica of " +
           describe_expert(a.layer, a.expert) + " (loaded in " +
           std::to_string(static_cast<int>(ms_since(it->started))) +
           " ms); it joins the placement");
      joined = true;
    } else {
      count("failed", a.reason);
      log_("autoscaler: no replica of " + describe_expert(a.layer, a.expert) + " on node " +
           it->node + ": " + failure);
    }
    it = loading_.erase(it);
  }
  return joined;
}

void Autoscaler::retire(const ScalingAction& a, std::vector<expert_shard_actor>& stopped) {
  // The oldest added replica of that expert goes.
  for (auto it = node_.added.begin(); it != node_.added.end(); ++it) {
    if (it->layer != a.layer || it->expert != a.expert) continue;
    if (it->actor) stopped.push_back(it->actor);
    if (it->peer >= 0) drops_.push_back({it->peer, a.layer, a.expert});
    node_.added.erase(it);
    break;
  }
  count("retire", a.reason);
  log_("autoscaler: retire a replica of " + describe_expert(a.layer, a.expert) + " (" + a.reason +
       ": " + a.detail + ")");
}

}  // namespace moeflow
