#include "actors/local_pipeline.h"

#include "actors/expert_shard_actor.h"
#include "core/error.h"

namespace moeflow {

ExpertOwners owners_from_selections(const ModelConfig& cfg,
                                    const std::vector<ExpertSelection>& shard_experts) {
  ExpertOwners owners(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!cfg.layer_is_moe[l]) continue;
    owners[l].resize(cfg.num_experts);
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      for (size_t s = 0; s < shard_experts.size(); ++s)
        if (!shard_experts[s] || shard_experts[s](l, e))
          owners[l][e].push_back(static_cast<int>(s));
      if (owners[l][e].empty())
        throw Error("layer " + std::to_string(l) + " expert " + std::to_string(e) +
                    " is held by no shard");
    }
  }
  return owners;
}

void stop_pipeline(const LocalPipeline& p) {
  caf::anon_send_exit(p.scheduler, caf::exit_reason::user_shutdown);
  if (p.speculator) caf::anon_send_exit(p.speculator, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(p.router, caf::exit_reason::user_shutdown);
  for (const auto& s : p.shards) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}

speculator_actor spawn_speculator(caf::actor_system& system, const router_actor& router,
                                  const ModelConfig& config, const SpeculativeSettings& settings,
                                  SpeculatorOptions options) {
  return system.spawn<caf::detached>(make_speculator, router, config, settings, std::move(options));
}

LocalPipeline spawn_local_pipeline(caf::actor_system& system, const std::filesystem::path& model,
                                   const std::vector<ExpertSelection>& shard_experts,
                                   const LocalPipelineOptions& options) {
  LocalPipeline p;
  auto router_model = std::shared_ptr<RouterModel>(RouterModel::load(model, options.dtype, {}));
  p.config = router_model->config();
  ExpertOwners owners = owners_from_selections(p.config, shard_experts);
  RouterOptions router_options = options.router;
  SchedulerOptions scheduler_options = options.scheduler;
  if (options.registry) {
    std::vector<std::vector<int>> replicas(p.config.num_layers);
    for (int64_t l = 0; l < p.config.num_layers; ++l)
      for (const auto& holders : owners[l]) replicas[l].push_back(static_cast<int>(holders.size()));
    p.routing = std::make_shared<metrics::RoutingRecorder>(
        options.registry, moe_layers(p.config), static_cast<size_t>(p.config.num_experts),
        std::move(replicas), options.routing);
    router_options.metrics = std::make_shared<RouterMetrics>(options.registry, p.config, p.routing);
    scheduler_options.metrics = std::make_shared<SchedulerMetrics>(
        options.registry, scheduler_options.max_running, scheduler_options.max_waiting,
        scheduler_options.kv_budget_tokens);
  }
  for (const auto& selection : shard_experts) {
    auto shard =
        std::shared_ptr<ExpertShard>(ExpertShard::load(model, options.dtype, selection, {}));
    std::shared_ptr<ShardMetrics> metrics;
    if (options.registry)
      metrics = std::make_shared<ShardMetrics>(
          options.registry, "shard" + std::to_string(p.shards.size()), p.config.num_layers,
          p.config.num_experts, options.routing.per_expert);
    p.shards.push_back(system.spawn(make_expert_shard, std::move(shard), std::move(metrics)));
  }
  p.router_model = router_model;
  p.router = system.spawn(make_router, std::move(router_model), p.shards, std::move(owners),
                          router_options);
  if (options.speculative) {
    SpeculatorOptions speculator_options = options.speculator;
    speculator_options.step_timeout = scheduler_options.step_timeout;
    if (options.registry)
      speculator_options.metrics = std::make_shared<SpeculativeMetrics>(options.registry);
    p.speculator = spawn_speculator(system, p.router, p.config, *options.speculative,
                                    std::move(speculator_options));
    scheduler_options.speculator = p.speculator;
    scheduler_options.speculative = options.speculative->enabled;
  }
  p.scheduler = system.spawn(make_scheduler, p.router, p.config, scheduler_options);
  return p;
}

}  // namespace moeflow
