#include "actors/router_node.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/expert_shard_actor.h"
#include "actors/node_devices.h"
#include "actors/node_metrics.h"
#include "actors/remote_shard_actor.h"
#include "actors/router_metrics.h"
#include "actors/speculative_settings.h"
#include "core/error.h"
#include "graph/device_check.h"
#include "graph/graph_plan.h"
#include "model/model_hash.h"
#include "transport/endpoint.h"
#include "transport/gpu_group_plan.h"

namespace moeflow {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::vector<int>> replica_counts(const ExpertOwners& owners) {
  std::vector<std::vector<int>> replicas(owners.size());
  for (size_t l = 0; l < owners.size(); ++l)
    for (const auto& holders : owners[l]) replicas[l].push_back(static_cast<int>(holders.size()));
  return replicas;
}

// One actor per shard of `g`, in graph order: the actor of `reuse` (shard name -> actor) when the
// shard is on the router node and holds the same experts as in `before`, else a new one (local
// shards load their weights here).
std::vector<expert_shard_actor> shard_actors(RouterNode& node, const GraphSpec& g,
                                             const GraphSpec* before,
                                             const std::map<std::string, expert_shard_actor>& reuse,
                                             std::vector<expert_shard_actor>* spawned) {
  const std::string& me = g.router_node().name;
  const ModelConfig& cfg = node.pipeline.config;
  const uint64_t hash = graph_hash(g);
  check_node_devices(g, me);
  std::vector<expert_shard_actor> out;
  for (const ShardSpec& s : g.shards) {
    if (s.node == me) {
      const ShardSpec* old = before ? before->find_shard(s.name) : nullptr;
      if (old && old->node == before->router_node().name && same_shard(*old, s, cfg) &&
          reuse.count(s.name)) {
        out.push_back(reuse.at(s.name));
        continue;
      }
      auto shard = std::shared_ptr<ExpertShard>(ExpertShard::load(
          g.model.path, g.model.dtype, [&s](int64_t l, int64_t e) { return s.owns(l, e); }, {},
          cuda_device_index(s.device)));
      auto metrics = std::make_shared<ShardMetrics>(node.registry, s.name, cfg.num_layers,
                                                    cfg.num_experts, g.metrics.per_expert);
      out.push_back(node.system->spawn(make_expert_shard, std::move(shard), std::move(metrics)));
    } else {
      out.push_back(
          node.system->spawn(make_remote_shard, node.bridge.get(), node.peer_of.at(s.node), hash));
    }
    if (spawned) spawned->push_back(out.back());
  }
  return out;
}

void stop_actors(const std::vector<expert_shard_actor>& actors) {
  for (const auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

// The bridge of a graph with explicit nodes (also one whose only node is the router's: a live
// change may add expert nodes).
void make_bridge(RouterNode& node, const GraphSpec& g) {
  const NodeSpec& me = g.router_node();
  const ModelConfig& cfg = node.pipeline.config;
  transport::Hello ours{me.name, 0, graph_hash(g), node.model_hash};
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == me.name) ours.node_id = static_cast<uint32_t>(i);
  transport::DecodeLimits limits;
  limits.hidden = static_cast<uint32_t>(cfg.hidden_size);
  limits.num_layers = static_cast<uint32_t>(cfg.num_layers);
  limits.num_experts = static_cast<uint32_t>(cfg.num_experts);
  limits.max_top_k = static_cast<uint32_t>(cfg.top_k);
  node.bridge =
      std::make_unique<Bridge>(std::vector<BridgePeer>{}, ours, limits,
                               BridgeTimeouts{std::chrono::milliseconds(g.timeouts.heartbeat_ms),
                                              std::chrono::milliseconds(g.timeouts.peer_down_ms)},
                               node.registry.get());
}

// The bridge peer of expert node `n`. `joining`: a node added by a change to graph `g` (it runs
// only `g`).
void connect_node(RouterNode& node, const GraphSpec& g, const NodeSpec& n, bool joining) {
  if (!node.bridge) throw Error("node " + n.name + ": this graph has no bridge to other nodes");
  node.peer_of[n.name] =
      node.bridge->add_peer({n.name, transport::tcp_endpoint(n.host, n.control_port),
                             transport::tcp_endpoint(n.host, n.data_port)},
                            joining ? graph_hash(g) : 0);
}

// The NCCL group of `g`'s GPU shards: the service is made when a graph first has a GPU shard
// and wired to the bridge, then told of each graph applied.
void apply_gpu_group(RouterNode& node, const GraphSpec& g) {
  if (!node.gpu_group) {
    if (transport::plan_gpu_group(g).members.empty()) return;
    GpuGroupServiceOptions options;
    options.node = g.router_node().name;
    Bridge* bridge = node.bridge.get();
    node.gpu_group = std::make_unique<GpuGroupService>(
        options,
        [bridge](const std::string& member, const transport::GpuGroup& group) {
          if (bridge) bridge->send_gpu_group(member, group);
        },
        node.registry.get());
    if (bridge) {
      GpuGroupService* service = node.gpu_group.get();
      bridge->set_gpu_group_events(
          {[service](const std::string& n) { service->node_up(n); },
           [service](const std::string& n) { service->node_down(n); },
           [service](const transport::GpuGroupReady& ready) { service->answer(ready); }});
    }
  }
  node.gpu_group->apply_graph(g);
}

}  // namespace

RouterNode::~RouterNode() {
  stop_pipeline(pipeline);
  for (const AddedReplica& r : added)
    if (r.actor) caf::anon_send_exit(r.actor, caf::exit_reason::user_shutdown);
  if (system) {
    // The actors write metrics and use the bridge until they are gone.
    caf::scoped_actor self{*system};
    if (pipeline.scheduler) self->wait_for(pipeline.scheduler);
    if (pipeline.speculator) self->wait_for(pipeline.speculator);
    if (pipeline.router) self->wait_for(pipeline.router);
    for (const auto& a : pipeline.shards) self->wait_for(a);
    for (const AddedReplica& r : added)
      if (r.actor) self->wait_for(r.actor);
  }
  // The bridge calls into the group service and the service sends through the bridge.
  if (bridge) bridge->set_gpu_group_events({});
  gpu_group.reset();
  bridge.reset();
}

void RouterNode::swap_placement(const GraphSpec& g,
                                const std::vector<expert_shard_actor>& graph_shards,
                                ExpertOwners owners) {
  auto update = std::make_shared<PlacementUpdate>();
  update->shards = graph_shards;
  update->owners = std::move(owners);
  for (const AddedReplica& r : added) {
    auto& holders = update->owners.at(r.layer).at(r.expert);
    if (r.peer < 0) {
      holders.push_back(static_cast<int>(update->shards.size()));
      update->shards.push_back(r.actor);
      continue;
    }
    const auto on_node = std::find_if(g.shards.begin(), g.shards.end(),
                                      [&](const ShardSpec& s) { return s.node == r.node; });
    if (on_node == g.shards.end())
      throw Error("internal: the replica of layer " + std::to_string(r.layer) + " expert " +
                  std::to_string(r.expert) + " is on node " + r.node +
                  ", which holds no shard of the graph");
    holders.push_back(static_cast<int>(on_node - g.shards.begin()));
  }
  caf::scoped_actor self{*system};
  std::string failure;
  self->request(pipeline.router, std::chrono::seconds(60), placement_atom::value,
                PlacementUpdatePtr(update))
      .receive([](bool) {}, [&](caf::error& err) { failure = describe(err); });
  if (!failure.empty()) throw Error("the router did not take the new placement: " + failure);
  routing->set_replicas(replica_counts(update->owners));
}

std::string RouterNode::reload(const GraphSpec& next, std::chrono::milliseconds wait_for_nodes) {
  const ModelConfig& cfg = pipeline.config;
  const GraphPlan plan = plan_graph_change(graph, next, cfg);
  if (!plan.live()) {
    std::string why;
    for (const std::string& r : plan.restart) why += (why.empty() ? "" : "; ") + r;
    throw Error("cannot apply live: " + why);
  }
  const uint64_t old_hash = graph_hash(graph), new_hash = graph_hash(next);
  if (plan.empty() && old_hash == new_hash) return "no changes";
  transport::plan_gpu_group(next);  // refuses GPU shards that cannot form one group, up front
  const auto started = Clock::now();

  // New expert nodes (started with `next` already) join the bridge now; removed ones leave it
  // once no placement uses them.
  for (const std::string& name : plan.nodes_added)
    connect_node(*this, next, *next.find_node(name), true);
  std::set<int> leaving;
  for (const std::string& name : plan.nodes_removed) leaving.insert(peer_of.at(name));
  auto forget_added_nodes = [&] {
    for (const std::string& name : plan.nodes_added) {
      bridge->remove_peer(peer_of.at(name));
      peer_of.erase(name);
    }
  };

  std::map<std::string, expert_shard_actor> current;
  for (size_t i = 0; i < graph.shards.size(); ++i)
    current[graph.shards[i].name] = pipeline.shards[i];
  std::vector<expert_shard_actor> spawned;
  std::vector<expert_shard_actor> shards;
  try {
    shards = shard_actors(*this, next, &graph, current, &spawned);
  } catch (const Error& e) {
    stop_actors(spawned);
    forget_added_nodes();
    throw Error(std::string("cannot load the new shards: ") + e.what());
  }
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();

  // The expert nodes reload the same file; their requests for the new graph may go out only
  // once they serve it (until then they still serve the old one).
  if (bridge) {
    std::string waiting;
    const auto deadline = Clock::now() + wait_for_nodes;
    while (!bridge->peers_run(new_hash, &waiting, leaving)) {
      if (Clock::now() >= deadline) {
        stop_actors(spawned);
        forget_added_nodes();
        throw Error("expert node(s) " + waiting + " did not report the new graph within " +
                    std::to_string(wait_for_nodes.count()) +
                    " ms (reload the graph on every node: SIGHUP or the same file)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // A replica added on an expert node that leaves, or keeps no shard in `next` to reach it by,
  // goes; a node that stays is told to drop it once the new placement is in use.
  std::vector<AddedReplica> kept_added, dropped_added;
  for (AddedReplica& r : added)
    (r.peer >= 0 && (leaving.count(r.peer) || next.shards_on(r.node).empty()) ? dropped_added
                                                                              : kept_added)
        .push_back(std::move(r));
  added = std::move(kept_added);
  try {
    swap_placement(next, shards, make_placement(next, cfg).owners);
  } catch (const Error&) {
    added.insert(added.end(), dropped_added.begin(), dropped_added.end());
    stop_actors(spawned);
    forget_added_nodes();
    throw;
  }
  for (const AddedReplica& r : dropped_added)
    if (!leaving.count(r.peer))
      bridge->request_replica(r.peer, false, r.layer, static_cast<int32_t>(r.expert));
  for (const std::string& name : plan.nodes_removed) {
    bridge->remove_peer(peer_of.at(name));
    peer_of.erase(name);
  }
  if (bridge) bridge->set_graph_hash(new_hash);
  const double swap_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();

  // Retire what the new placement does not use.
  std::set<caf::actor_addr> kept;
  for (const auto& a : shards) kept.insert(a.address());
  std::vector<expert_shard_actor> retired;
  for (const auto& a : pipeline.shards)
    if (!kept.count(a.address())) retired.push_back(a);
  stop_actors(retired);

  caf::scoped_actor self{*system};
  self->send(pipeline.scheduler, configure_atom::value, next.scheduler.max_running,
             next.scheduler.max_waiting, next.scheduler.kv_budget_tokens,
             next.scheduler.prefill_chunk);
  if (std::any_of(plan.settings.begin(), plan.settings.end(),
                  [](const std::string& s) { return s.rfind("speculative.", 0) == 0; }))
    self->send(pipeline.scheduler, configure_atom::value,
               SpeculativeSettingsPtr(std::make_shared<SpeculativeSettings>(
                   speculative_settings(next.speculative, cfg))));
  const std::string me = next.router_node().name;
  export_node_info(*registry, me, "router", old_hash, model_hash, 0.0);
  export_node_info(*registry, me, "router", new_hash, model_hash, 1.0);
  pipeline.shards = std::move(shards);
  graph = next;
  apply_gpu_group(*this, graph);
  char summary[256];
  std::snprintf(summary, sizeof summary,
                "applied: %zu shard actor(s) started in %.0f ms (weights loaded), placement "
                "swapped %.0f ms after the reload began, %zu retired, %zu node(s) joined, %zu "
                "left",
                spawned.size(), load_ms, swap_ms, retired.size(), plan.nodes_added.size(),
                plan.nodes_removed.size());
  return summary;
}

std::unique_ptr<RouterNode> start_router_node(caf::actor_system& system, const GraphSpec& g,
                                              std::chrono::milliseconds connect_timeout) {
  auto node = std::make_unique<RouterNode>();
  node->system = &system;
  node->graph = g;
  const NodeSpec& me = g.router_node();
  check_node_devices(g, me.name);  // before loading anything onto a GPU this node may lack
  auto router_model = std::shared_ptr<RouterModel>(
      RouterModel::load(g.model.path, g.model.dtype, {}, cuda_device_index(g.model.router_device)));
  const ModelConfig& cfg = router_model->config();
  node->pipeline.config = cfg;
  const Placement placement = make_placement(g, cfg);
  node->routing = std::make_shared<metrics::RoutingRecorder>(
      node->registry, moe_layers(cfg), static_cast<size_t>(cfg.num_experts),
      replica_counts(placement.owners), routing_recorder_options(g.metrics));
  node->model_hash = model_hash(router_model->checkpoint());
  node->expert_mb = 3.0 * static_cast<double>(cfg.hidden_size * cfg.expert_intermediate) *
                    (router_model->compute_type() == ComputeType::bf16 ? 2.0 : 4.0) /
                    (1024.0 * 1024.0);
  export_node_info(*node->registry, me.name, "router", graph_hash(g), node->model_hash);
  export_graph_reload_counters(*node->registry);

  // Every other node is a bridge peer (also one without shards now: a live change may give it
  // some).
  if (!g.implicit_node) make_bridge(*node, g);
  for (const NodeSpec& n : g.nodes)
    if (!n.router) connect_node(*node, g, n, false);

  node->pipeline.shards = shard_actors(*node, g, nullptr, {}, nullptr);
  RouterOptions router_options;
  router_options.shard_timeout = std::chrono::milliseconds(g.timeouts.request_ms);
  // A failed node is tried again once the bridge could have noticed that it is back.
  router_options.failed_shard_retry = std::chrono::milliseconds(g.timeouts.peer_down_ms);
  router_options.metrics = std::make_shared<RouterMetrics>(node->registry, cfg, node->routing);
  node->pipeline.router_model = router_model;
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
  // Always there, so that a live graph change can turn speculation on.
  SpeculatorOptions speculator_options;
  speculator_options.step_timeout = scheduler_options.step_timeout;
  speculator_options.metrics = std::make_shared<SpeculativeMetrics>(node->registry);
  const SpeculativeSettings speculative = speculative_settings(g.speculative, cfg);
  node->pipeline.speculator = spawn_speculator(system, node->pipeline.router, cfg, speculative,
                                               std::move(speculator_options));
  scheduler_options.speculator = node->pipeline.speculator;
  scheduler_options.speculative = speculative.enabled;
  node->pipeline.scheduler =
      system.spawn(make_scheduler, node->pipeline.router, cfg, scheduler_options);

  if (node->bridge) {
    std::string why;
    if (!node->bridge->wait_until_up(connect_timeout, &why))
      throw Error("could not reach expert node(s) within " +
                  std::to_string(connect_timeout.count()) + " ms: " + why);
  }
  // Once every peer is up, so that each member node gets the first generation.
  apply_gpu_group(*node, g);
  return node;
}

}  // namespace moeflow
