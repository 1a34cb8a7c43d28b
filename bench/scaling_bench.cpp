#include "bench/scaling_bench.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/autoscaler.h"
#include "actors/router_node.h"
#include "bench/bench_clock.h"
#include "bench/machine_limits.h"
#include "core/error.h"
#include "model/parameter_count.h"

namespace moeflow::bench {
namespace {

namespace fs = std::filesystem;

// One round: `batch` requests of the skewed prompt at once; returns the seconds it took.
double run_round(caf::actor_system& system, const scheduler_actor& scheduler,
                 const ScalingBenchOptions& o) {
  caf::scoped_actor self{system};
  auto request = std::make_shared<GenerationRequest>();
  request->prompt.assign(static_cast<size_t>(o.prompt), 7);
  request->max_tokens = o.tokens;
  request->stop_at_eos = false;
  const double t0 = now_seconds();
  for (int64_t i = 0; i < o.batch; ++i)
    self->send(scheduler, generate_atom::value, GenerationRequestPtr(request));
  for (int64_t i = 0; i < o.batch; ++i)
    self->receive([](const GenerationResultPtr&) {},
                  [](caf::error& err) { throw Error("request failed: " + describe(err)); });
  return now_seconds() - t0;
}

struct Result {
  double tokens_per_s = 0;
  size_t added = 0;
};

Result measure(const fs::path& dir, const std::string& policy, const ScalingBenchOptions& o) {
  const fs::path file = dir / (policy + ".toml");
  {
    std::ofstream out(file);
    out << "[model]\npath = \"" << fs::absolute(o.model).string() << "\"\n\n"
        << "[scaling]\nenabled = " << (policy == "off" ? "false" : "true") << "\npolicy = \""
        << (policy == "off" ? "threshold" : policy) << "\"\nhot_load = 1.5\nmax_replicas = 4\n"
        << "memory_mb = 65536\nwindow_ms = 300\ncooldown_ms = 600000\n";
  }
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), std::chrono::seconds(10));
  Autoscaler autoscaler(
      *node, [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); });
  // Warm-up: skewed traffic for a few windows while the autoscaler decides.
  const double warm_until = now_seconds() + 2.0;
  while (now_seconds() < warm_until) {
    run_round(system, node->pipeline.scheduler, o);
    autoscaler.poll();
  }
  Result r;
  r.added = node->added.size();
  double seconds = 0;
  for (int64_t i = 0; i < o.rounds; ++i) seconds += run_round(system, node->pipeline.scheduler, o);
  r.tokens_per_s = static_cast<double>(o.rounds * o.batch * (o.prompt + o.tokens)) / seconds;
  return r;
}

}  // namespace

int run_scaling_bench(const ScalingBenchOptions& opts) {
  const ModelConfig cfg = load_model_config(opts.model);
  const fs::path dir =
      fs::temp_directory_path() / ("moeflow-scaling-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::vector<std::pair<std::string, Result>> results;
  for (const char* policy : {"off", "threshold", "eplb"}) {
    std::fprintf(stderr, "measuring autoscaling %s...\n", policy);
    results.emplace_back(policy, measure(dir, policy, opts));
  }
  const double peak = measure_fma_peak();
  const double flops_per_token = 2.0 * static_cast<double>(count_parameters(cfg).active);
  std::printf("## Autoscaling under skewed load\n\n");
  std::printf(
      "model: %s; %lld requests at once, prompt %lld x the same token, %lld generated; %lld timed "
      "rounds after 2 s of warm-up; %s\n\n",
      opts.model.c_str(), static_cast<long long>(opts.batch), static_cast<long long>(opts.prompt),
      static_cast<long long>(opts.tokens), static_cast<long long>(opts.rounds),
      cpu_model().c_str());
  std::printf(
      "| autoscaling | replicas added | tokens/s (prompt + generated) | vs off | of the FMA "
      "peak |\n|---|---|---|---|---|\n");
  for (const auto& [policy, r] : results)
    std::printf("| %s | %zu | %.1f | %.2fx | %.1f%% |\n", policy.c_str(), r.added, r.tokens_per_s,
                r.tokens_per_s / results[0].second.tokens_per_s,
                100.0 * r.tokens_per_s * flops_per_token / peak);
  std::printf(
      "\nFMA peak %.0f GFLOP/s (fp32, measured after the runs); 2 x %.0f M active parameters per "
      "token. Added replicas live in the router node's process and share its cores with the "
      "graph's shard.\n",
      peak / 1e9, static_cast<double>(count_parameters(cfg).active) / 1e6);
  return 0;
}

}  // namespace moeflow::bench
