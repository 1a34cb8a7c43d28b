#include "actors/router_node.h"

#include <cstdio>
#include <map>

#include "actors/expert_shard_actor.h"
#include "actors/node_metrics.h"
#include "actors/remote_shard_actor.h"
#include "actors/router_metrics.h"
#include "core/error.h"
#include "model/model_hash.h"
#include "transport/endpoint.h"

namespace moeflow {

RouterNode::~RouterNode() {
  stop_pipeline(pipeline);
  for (const auto& a : remote_shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  if (system) {
    // The actors write metrics and use the bridge until they are gone.
    caf::scoped_actor self{*system};
    if (pipeline.scheduler) self->wait_for(pipeline.scheduler);
    if (pipeline.router) self->wait_for(pipeline.router);
    for (const auto& a : pipeline.shards) self->wait_for(a);
  }
  bridge.reset();
}

std::unique_ptr<RouterNode> start_router_node(caf::actor_system& system, const GraphSpec& g,
                                              std::chrono::milliseconds connect_timeout) {
  auto node = std::make_unique<RouterNode>();
  node->system = &system;
  const NodeSpec& me = g.router_node();
  auto router_model =
      std::shared_ptr<RouterModel>(RouterModel::load(g.model.path, g.model.dtype, {}));
  const ModelConfig& cfg = router_model->config();
  node->pipeline.config = cfg;
  const Placement placement = make_placement(g, cfg);
  std::vector<std::vector<int>> replicas(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (const auto& holders : placement.owners[l])
      replicas[l].push_back(static_cast<int>(holders.size()));
  node->routing = std::make_shared<metrics::RoutingRecorder>(
      node->registry, moe_layers(cfg), static_cast<size_t>(cfg.num_experts), replicas,
      routing_recorder_options(g.metrics));
  const uint64_t our_model_hash = model_hash(router_model->checkpoint());
  export_node_info(*node->registry, me.name, "router", graph_hash(g), our_model_hash);
  export_speculative_metrics(*node->registry);

  // Remote nodes that hold shards, in graph order; one bridge peer each.
  std::map<std::string, int> peer_of;
  std::vector<BridgePeer> peers;
  for (const ShardSpec& s : g.shards) {
    if (s.node == me.name || peer_of.count(s.node)) continue;
    const NodeSpec* n = g.find_node(s.node);
    peer_of[s.node] = static_cast<int>(peers.size());
    peers.push_back({n->name, transport::tcp_endpoint(n->host, n->control_port),
                     transport::tcp_endpoint(n->host, n->data_port)});
  }
  if (!peers.empty()) {
    transport::Hello ours{me.name, 0, graph_hash(g), our_model_hash};
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == me.name) ours.node_id = static_cast<uint32_t>(i);
    transport::DecodeLimits limits;
    limits.hidden = static_cast<uint32_t>(cfg.hidden_size);
    limits.num_layers = static_cast<uint32_t>(cfg.num_layers);
    limits.num_experts = static_cast<uint32_t>(cfg.num_experts);
    limits.max_top_k = static_cast<uint32_t>(cfg.top_k);
    node->bridge =
        std::make_unique<Bridge>(peers, ours, limits,
                                 BridgeTimeouts{std::chrono::milliseconds(g.timeouts.heartbeat_ms),
                                                std::chrono::milliseconds(g.timeouts.peer_down_ms)},
                                 node->registry.get());
  }

  for (const ShardSpec& s : g.shards) {
    if (s.node == me.name) {
      auto shard = std::shared_ptr<ExpertShard>(ExpertShard::load(
          g.model.path, g.model.dtype, [&s](int64_t l, int64_t e) { return s.owns(l, e); }, {}));
      auto metrics = std::make_shared<ShardMetrics>(node->registry, s.name, cfg.num_layers,
                                                    cfg.num_experts, g.metrics.per_expert);
      node->pipeline.shards.push_back(
          system.spawn(make_expert_shard, std::move(shard), std::move(metrics)));
    } else {
      auto remote = system.spawn(make_remote_shard, node->bridge.get(), peer_of.at(s.node));
      node->remote_shards.push_back(caf::actor_cast<caf::actor>(remote));
      node->pipeline.shards.push_back(remote);
    }
  }
  RouterOptions router_options;
  router_options.shard_timeout = std::chrono::milliseconds(g.timeouts.request_ms);
  // A failed node is tried again once the bridge could have noticed that it is back.
  router_options.failed_shard_retry = std::chrono::milliseconds(g.timeouts.peer_down_ms);
  router_options.metrics = std::make_shared<RouterMetrics>(node->registry, cfg, node->routing);
  node->pipeline.router = system.spawn(make_router, router_model, node->pipeline.shards,
                                       placement.owners, router_options);
  SchedulerOptions scheduler_options;
  scheduler_options.max_running = g.scheduler.max_running;
  scheduler_options.max_waiting = g.scheduler.max_waiting;
  scheduler_options.kv_budget_tokens = g.scheduler.kv_budget_tokens;
  scheduler_options.prefill_chunk = g.scheduler.prefill_chunk;
  scheduler_options.metrics =
      std::make_shared<SchedulerMetrics>(node->registry, g.scheduler.max_running,
                                         g.scheduler.max_waiting, g.scheduler.kv_budget_tokens);
  node->pipeline.scheduler =
      system.spawn(make_scheduler, node->pipeline.router, cfg, scheduler_options);

  if (node->bridge) {
    std::string why;
    if (!node->bridge->wait_until_up(connect_timeout, &why))
      throw Error("could not reach expert node(s) within " +
                  std::to_string(connect_timeout.count()) + " ms: " + why);
  }
  return node;
}

}  // namespace moeflow
