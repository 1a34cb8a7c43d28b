#pragma once
// Spawns the actors of one process: expert shards (each loading its own experts), the router and
// the scheduler, wired together.
#include <caf/all.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "actors/router_actor.h"
#include "actors/scheduler_actor.h"
#include "actors/speculator_actor.h"
#include "model/expert_shard.h"

namespace moeflow {

struct LocalPipeline {
  router_actor router;
  scheduler_actor scheduler;
  speculator_actor speculator;  // null without LocalPipelineOptions::speculative
  std::vector<expert_shard_actor> shards;
  ModelConfig config;
  std::shared_ptr<metrics::RoutingRecorder> routing;  // null when metrics are off
  // The router's model and KV cache; for tests, read only once the router has stopped.
  std::shared_ptr<RouterModel> router_model;
};

struct LocalPipelineOptions {
  std::string dtype = "auto";
  RouterOptions router;
  SchedulerOptions scheduler;
  // Where the actors' metrics go (shards "shard0", "shard1", ...; routing statistics with the
  // given options); null: metrics off.
  std::shared_ptr<metrics::Registry> registry;
  metrics::RoutingRecorderOptions routing;
  // A speculator (detached, its own thread) with these settings; the scheduler speculates while
  // they are enabled. Without: no speculator.
  std::optional<SpeculativeSettings> speculative;
  SpeculatorOptions speculator;  // its log; step_timeout and metrics are set from the above
};

// One shard per selection. owners[layer][expert] is derived from the selections; every expert of
// every MoE layer must be held by some shard (throws moeflow::Error naming the first that is not).
LocalPipeline spawn_local_pipeline(caf::actor_system& system, const std::filesystem::path& model,
                                   const std::vector<ExpertSelection>& shard_experts,
                                   const LocalPipelineOptions& options = {});

// Stops every actor of the pipeline (pending timers would otherwise keep the system alive).
void stop_pipeline(const LocalPipeline& pipeline);

// Spawns the speculator over `router` (detached: it blocks on router steps in its own thread).
speculator_actor spawn_speculator(caf::actor_system& system, const router_actor& router,
                                  const ModelConfig& config, const SpeculativeSettings& settings,
                                  SpeculatorOptions options);

// owners[layer][expert] for the given selections; throws when an MoE expert has no holder.
ExpertOwners owners_from_selections(const ModelConfig& cfg,
                                    const std::vector<ExpertSelection>& shard_experts);

}  // namespace moeflow
