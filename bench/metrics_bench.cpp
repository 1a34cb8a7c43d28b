#include "bench/metrics_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "actors/actor_system_setup.h"
#include "actors/local_pipeline.h"
#include "bench/bench_clock.h"
#include "bench/machine_limits.h"
#include "bench/router_steps.h"
#include "core/error.h"
#include "core/format.h"
#include "model/router_model.h"
#include "model/sampler.h"

namespace moeflow::bench {
namespace {

// Decode `tokens` steps of `batch` fresh sequences (ids from first_id) after a 16-token prompt;
// returns the seconds the decode steps took.
double time_decode(caf::scoped_actor& self, const LocalPipeline& p, const MetricsBenchOptions& o,
                   uint64_t first_id, std::mt19937_64& rng) {
  StepRequestPtr step = random_prompt_step(o.batch, 16, first_id, p.config.vocab_size, rng);
  double timed = 0;
  for (int64_t t = 0; t <= o.tokens; ++t) {  // step 0 is the prefill, not timed
    const double t0 = now_seconds();
    const StepResultPtr result = run_router_step(self, p.router, step);
    if (t > 0) timed += now_seconds() - t0;
    step = greedy_next_step(*step, *result);
  }
  for (const auto& s : step->sequences) self->send(p.router, release_atom::value, s.seq_id);
  return timed;
}

}  // namespace

int run_metrics_bench(const MetricsBenchOptions& opts) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  std::fprintf(stderr, "loading %s twice (metrics off, metrics on)...\n", opts.model.c_str());
  LocalPipelineOptions off_options, on_options;
  on_options.registry = std::make_shared<metrics::Registry>();
  const LocalPipeline off = spawn_local_pipeline(system, opts.model, {nullptr}, off_options);
  const LocalPipeline on = spawn_local_pipeline(system, opts.model, {nullptr}, on_options);
  const ModelConfig& model = off.config;

  // Bytes one decode step reads at most: the non-expert weights, and per MoE layer the chosen
  // experts, all distinct (exact at batch 1, where a token's top-k experts are distinct).
  const auto router_model = RouterModel::load(opts.model, "auto", {});
  const double element = router_model->compute_type() == ComputeType::bf16 ? 2.0 : 4.0;
  const double expert_bytes = 3.0 * model.hidden_size * model.expert_intermediate * element;
  const double distinct = std::min<double>(model.num_experts, opts.batch * model.top_k);
  const double step_bytes = static_cast<double>(router_model->bytes_per_step()) +
                            model.moe_layer_count() * distinct * expert_bytes;

  caf::scoped_actor self{system};
  std::mt19937_64 rng(7);
  uint64_t next_id = 1;
  time_decode(self, off, opts, next_id, rng);  // warm-up: page faults, thread pools
  time_decode(self, on, opts, next_id, rng);
  next_id += opts.batch;
  std::vector<double> off_rate, on_rate, ratio;
  for (int64_t r = 0; r < opts.rounds; ++r) {
    std::fprintf(stderr, "round %lld of %lld...\n", static_cast<long long>(r + 1),
                 static_cast<long long>(opts.rounds));
    const double work = static_cast<double>(opts.batch * opts.tokens);
    double off_s, on_s;
    if (r % 2 == 0) {
      off_s = time_decode(self, off, opts, next_id, rng);
      on_s = time_decode(self, on, opts, next_id, rng);
    } else {
      on_s = time_decode(self, on, opts, next_id, rng);
      off_s = time_decode(self, off, opts, next_id, rng);
    }
    next_id += opts.batch;
    off_rate.push_back(work / off_s);
    on_rate.push_back(work / on_s);
    ratio.push_back(off_s / on_s);
  }
  on.routing->flush();
  const double bandwidth = measure_read_bandwidth();
  const double limit = opts.batch * bandwidth / step_bytes;

  std::printf("## Metrics cost: decode through the actors, metrics off vs on\n\n");
  std::printf("model: %s; batch %lld; %lld decode steps per round, %lld rounds; %s\n\n",
              opts.model.c_str(), static_cast<long long>(opts.batch),
              static_cast<long long>(opts.tokens), static_cast<long long>(opts.rounds),
              cpu_model().c_str());
  std::printf("| metrics | tokens/s (median of rounds) | of the DRAM limit |\n|---|---|---|\n");
  std::printf("| off | %.1f | %.0f%% |\n", median(off_rate), 100.0 * median(off_rate) / limit);
  std::printf("| on | %.1f | %.0f%% |\n", median(on_rate), 100.0 * median(on_rate) / limit);
  std::printf("| limit | %.1f | %s per step at %.1f GB/s |\n\n", limit,
              format_bytes(step_bytes).c_str(), bandwidth / 1e9);
  std::printf("on / off tokens/s, median of per-round ratios: %.3f (min %.3f, max %.3f)\n",
              median(ratio), *std::min_element(ratio.begin(), ratio.end()),
              *std::max_element(ratio.begin(), ratio.end()));
  std::printf(
      "\n\"on\" records shard, per-expert, layer-wait and routing metrics as `moeflow serve` "
      "does; the routing statistics are reduced in their background thread during the run. "
      "Limit: bytes per step (non-expert weights + top-k distinct experts per MoE layer, an upper "
      "bound on bytes above batch 1) over the DRAM read bandwidth measured after the run.\n");
  stop_pipeline(off);
  stop_pipeline(on);
  return 0;
}

}  // namespace moeflow::bench
