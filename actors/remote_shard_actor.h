#pragma once
// remote_shard: stands in, on the router's node, for an expert shard on another node. The router
// talks to it like any expert_shard_actor; it hands each batch to the bridge and delivers the
// reply (or the failure) the bridge sends back.
#include <caf/all.hpp>
#include <cstdint>
#include <unordered_map>

#include "actors/bridge.h"
#include "actors/messages.h"

namespace moeflow {

struct remote_shard_state {
  static inline const char* name = "remote_shard";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  remote_shard_state() = default;
  Bridge* bridge = nullptr;  // outlives the actor (owned by the node runtime)
  int peer = 0;
  uint64_t graph_hash = 0;  // of the graph whose placement this stand-in belongs to
  uint64_t next_request_id = 1;
  std::unordered_map<uint64_t, caf::typed_response_promise<ExpertOutputPtr>> pending;
};

remote_shard_actor::behavior_type make_remote_shard(
    remote_shard_actor::stateful_pointer<remote_shard_state> self, Bridge* bridge, int peer,
    uint64_t graph_hash);

}  // namespace moeflow
