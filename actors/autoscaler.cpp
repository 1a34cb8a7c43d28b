#include "actors/autoscaler.h"

#include "actors/expert_shard_actor.h"
#include "core/error.h"

namespace moeflow {

using Clock = std::chrono::steady_clock;

Autoscaler::Autoscaler(RouterNode& node, Log log)
    : node_(node), log_(std::move(log)), last_eval_(Clock::now()) {
  // Every action and reason from the start, at 0, so that rate() and dashboards see the series.
  for (const char* action : {"add", "retire"})
    for (const char* reason : {"hot", "cold", "idle", "eplb"})
      node_.registry->counter("moeflow_autoscaler_actions_total",
                              "Autoscaler decisions by action and reason",
                              {{"action", action}, {"reason", reason}});
  node_.routing->flush();
  last_totals_ = node_.routing->token_totals();
}

std::vector<ScalingAction> Autoscaler::poll() {
  const ScalingSpec& spec = node_.graph.scaling;
  const auto now = Clock::now();
  if (now - last_eval_ < std::chrono::milliseconds(spec.window_ms)) return {};
  last_eval_ = now;
  node_.routing->flush();
  const auto totals = node_.routing->token_totals();
  if (!spec.enabled) {
    last_totals_ = totals;
    return {};
  }
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
  const std::vector<ScalingAction> actions = decide_scaling(spec, in);
  if (actions.empty()) return actions;
  std::vector<expert_shard_actor> retired;
  for (const ScalingAction& a : actions) {
    if (a.kind == ScalingAction::Kind::add) {
      add(a);
      continue;
    }
    // The oldest added replica of that expert goes.
    for (auto it = node_.added.begin(); it != node_.added.end(); ++it)
      if (it->layer == a.layer && it->expert == a.expert) {
        retired.push_back(it->actor);
        node_.added.erase(it);
        break;
      }
    retire(a);
  }
  node_.swap_placement(node_.pipeline.shards, placement.owners);
  // Retired actors stop once the router no longer sends them rows.
  for (const auto& actor : retired) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  return actions;
}

void Autoscaler::add(const ScalingAction& a) {
  const int64_t layer = a.layer, expert = a.expert;
  const auto started = Clock::now();
  auto shard = std::shared_ptr<ExpertShard>(ExpertShard::load(
      node_.graph.model.path, node_.graph.model.dtype,
      [layer, expert](int64_t l, int64_t e) { return l == layer && e == expert; }, {}));
  const ModelConfig& cfg = node_.pipeline.config;
  const std::string name = "auto-l" + std::to_string(layer) + "-e" + std::to_string(expert);
  auto metrics = std::make_shared<ShardMetrics>(node_.registry, name, cfg.num_layers,
                                                cfg.num_experts, node_.graph.metrics.per_expert);
  node_.added.push_back(
      {layer, expert, node_.system->spawn(make_expert_shard, std::move(shard), std::move(metrics)),
       Clock::now()});
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  node_.registry
      ->counter("moeflow_autoscaler_actions_total", "Autoscaler decisions by action and reason",
                {{"action", "add"}, {"reason", a.reason}})
      .inc();
  log_("autoscaler: add a replica of layer " + std::to_string(layer) + " expert " +
       std::to_string(expert) + " (" + a.reason + ": " + a.detail + "); weights loaded in " +
       std::to_string(static_cast<int>(ms)) + " ms");
}

void Autoscaler::retire(const ScalingAction& a) {
  node_.registry
      ->counter("moeflow_autoscaler_actions_total", "Autoscaler decisions by action and reason",
                {{"action", "retire"}, {"reason", a.reason}})
      .inc();
  log_("autoscaler: retire a replica of layer " + std::to_string(a.layer) + " expert " +
       std::to_string(a.expert) + " (" + a.reason + ": " + a.detail + ")");
}

}  // namespace moeflow
