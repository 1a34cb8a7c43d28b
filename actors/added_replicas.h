#pragma once
// Replicas added beside the graph's shards: one expert's weights in an expert_shard actor of its
// own. The router node's autoscaler adds them in its own process (single-process graphs), or asks
// an expert node to (replica_add on its control port); the node keeps them in an
// AddedReplicaSet, which loads on a thread of its own so that the node's I/O thread keeps
// serving meanwhile.
#include <caf/all.hpp>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "actors/messages.h"
#include "graph/graph.h"
#include "metrics/registry.h"
#include "model/model_config.h"

namespace moeflow {

// "added-l3-e5": the shard name of an added replica in logs and metric labels.
std::string added_replica_name(int64_t layer, int64_t expert);

// Loads (layer, expert) of the graph's model onto replica_device(graph, node) (the node's GPU when
// its shards use one, graph/replica_device.h) and spawns its actor, with shard metrics under
// added_replica_name(). Throws moeflow::Error when the weights do not load (or do not fit).
expert_shard_actor spawn_added_replica(caf::actor_system& system, const GraphSpec& graph,
                                       const std::string& node, const ModelConfig& cfg,
                                       const std::shared_ptr<metrics::Registry>& registry,
                                       int64_t layer, int64_t expert);

class AddedReplicaSet {
 public:
  // Loads replicas for `node` of `graph` (its model, and the device: see spawn_added_replica).
  AddedReplicaSet(caf::actor_system& system, GraphSpec graph, std::string node, ModelConfig cfg,
                  std::shared_ptr<metrics::Registry> registry);
  ~AddedReplicaSet();  // waits for loads in progress, then stops every replica
  AddedReplicaSet(const AddedReplicaSet&) = delete;
  AddedReplicaSet& operator=(const AddedReplicaSet&) = delete;

  // A load that ended, for the answer to its requester: `failure` is empty when it serves.
  struct Finished {
    uint64_t request_id = 0;
    std::string requester;  // the control socket's routing id
    int64_t layer = 0;
    int32_t expert = 0;
    std::string failure;
  };
  // Replicas added from now on follow `graph` (an applied reload: their device may have moved);
  // the ones served keep the device they loaded on.
  void follow(const GraphSpec& graph) { graph_ = graph; }
  // Starts loading (layer, expert) in the background. Already served or loading: the request
  // joins it and ends with it.
  void add(int64_t layer, int32_t expert, uint64_t request_id, std::string requester);
  // Stops serving (layer, expert); false when it was not served (a load in progress finishes
  // and is then dropped).
  bool drop(int64_t layer, int32_t expert);
  // Loads that ended since the last call; the ones that succeeded serve from now on.
  std::vector<Finished> poll();

  // The actor serving (layer, expert), or null.
  const expert_shard_actor* find(int64_t layer, int64_t expert) const;
  size_t size() const { return served_.size(); }

 private:
  using Key = std::pair<int64_t, int32_t>;
  struct Load {
    Key key;
    std::vector<std::pair<uint64_t, std::string>> requests;  // request id, requester
    std::thread thread;
    std::mutex mutex;  // guards the three below
    bool done = false;
    expert_shard_actor actor;
    std::string failure;
    bool dropped = false;  // drop() came while it loaded
  };

  caf::actor_system& system_;
  GraphSpec graph_;
  std::string node_;
  ModelConfig cfg_;
  std::shared_ptr<metrics::Registry> registry_;
  metrics::Gauge& gauge_;
  std::map<Key, expert_shard_actor> served_;
  std::list<Load> loading_;
};

}  // namespace moeflow
