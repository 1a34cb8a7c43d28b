#include "actors/added_replicas.h"

#include "actors/expert_shard_actor.h"
#include "core/error.h"
#include "graph/device_check.h"
#include "graph/replica_device.h"

namespace moeflow {

std::string added_replica_name(int64_t layer, int64_t expert) {
  return "added-l" + std::to_string(layer) + "-e" + std::to_string(expert);
}

expert_shard_actor spawn_added_replica(caf::actor_system& system, const GraphSpec& graph,
                                       const std::string& node, const ModelConfig& cfg,
                                       const std::shared_ptr<metrics::Registry>& registry,
                                       int64_t layer, int64_t expert) {
  auto shard = std::shared_ptr<ExpertShard>(ExpertShard::load(
      graph.model.path, graph.model.dtype,
      [layer, expert](int64_t l, int64_t e) { return l == layer && e == expert; }, {},
      cuda_device_index(replica_device(graph, node))));
  auto metrics =
      std::make_shared<ShardMetrics>(registry, added_replica_name(layer, expert), cfg.num_layers,
                                     cfg.num_experts, graph.metrics.per_expert);
  return system.spawn(make_expert_shard, std::move(shard), std::move(metrics));
}

AddedReplicaSet::AddedReplicaSet(caf::actor_system& system, GraphSpec graph, std::string node,
                                 ModelConfig cfg, std::shared_ptr<metrics::Registry> registry)
    : system_(system),
      graph_(std::move(graph)),
      node_(std::move(node)),
      cfg_(std::move(cfg)),
      registry_(std::move(registry)),
      gauge_(registry_->gauge("moeflow_node_added_replicas",
                              "Replicas this node serves beside its graph's shards, added by the "
                              "router's autoscaler")) {}

AddedReplicaSet::~AddedReplicaSet() {
  for (Load& load : loading_) {
    load.thread.join();
    if (load.actor) caf::anon_send_exit(load.actor, caf::exit_reason::user_shutdown);
  }
  for (const auto& [key, actor] : served_)
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

void AddedReplicaSet::add(int64_t layer, int32_t expert, uint64_t request_id,
                          std::string requester) {
  const Key key{layer, expert};
  for (Load& load : loading_)
    if (load.key == key) {
      std::lock_guard<std::mutex> lock(load.mutex);
      load.dropped = false;
      load.requests.emplace_back(request_id, std::move(requester));
      return;
    }
  Load& load = loading_.emplace_back();
  load.key = key;
  load.requests.emplace_back(request_id, std::move(requester));
  if (served_.count(key)) {  // answered by the next poll()
    load.done = true;
    return;
  }
  // The thread loads for the graph of now: follow() may replace graph_ meanwhile.
  load.thread = std::thread([this, &load, layer, expert, graph = graph_] {
    expert_shard_actor actor;
    std::string failure;
    try {
      actor = spawn_added_replica(system_, graph, node_, cfg_, registry_, layer, expert);
    } catch (const Error& e) {
      failure = e.what();
    }
    std::lock_guard<std::mutex> lock(load.mutex);
    load.actor = std::move(actor);
    load.failure = std::move(failure);
    load.done = true;
  });
}

bool AddedReplicaSet::drop(int64_t layer, int32_t expert) {
  const Key key{layer, expert};
  for (Load& load : loading_)
    if (load.key == key) {
      std::lock_guard<std::mutex> lock(load.mutex);
      load.dropped = true;
    }
  auto it = served_.find(key);
  if (it == served_.end()) return false;
  caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
  served_.erase(it);
  gauge_.set(static_cast<double>(served_.size()));
  return true;
}

std::vector<AddedReplicaSet::Finished> AddedReplicaSet::poll() {
  std::vector<Finished> out;
  for (auto it = loading_.begin(); it != loading_.end();) {
    Load& load = *it;
    {
      std::lock_guard<std::mutex> lock(load.mutex);
      if (!load.done) {
        ++it;
        continue;
      }
    }
    if (load.thread.joinable()) load.thread.join();
    std::string failure = load.failure;
    if (load.actor) {
      if (load.dropped || served_.count(load.key)) {
        caf::anon_send_exit(load.actor, caf::exit_reason::user_shutdown);
        if (load.dropped) failure = "dropped while it loaded";
      } else {
        served_.emplace(load.key, load.actor);
      }
    }
    for (auto& [id, requester] : load.requests)
      out.push_back({id, std::move(requester), load.key.first, load.key.second, failure});
    it = loading_.erase(it);
  }
  gauge_.set(static_cast<double>(served_.size()));
  return out;
}

const expert_shard_actor* AddedReplicaSet::find(int64_t layer, int64_t expert) const {
  auto it = served_.find({layer, static_cast<int32_t>(expert)});
  return it == served_.end() ? nullptr : &it->second;
}

}  // namespace moeflow
