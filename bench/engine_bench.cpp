#include "bench/engine_bench.h"
#include "bench/bench_clock.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu_limits.h"
#include "bench/machine_limits.h"
#include "core/format.h"
#include "kernels/cuda/expert_plan.h"
#include "model/engine.h"
#include "model/parameter_count.h"
#include "model/sampler.h"

namespace moeflow::bench {
namespace {

// `note`, when given, is a line printed under the machine's.
void print_header(const std::string& title, const Engine& engine, const std::string& note = "") {
  std::printf("## %s\n\n", title.c_str());
  std::printf("machine: %s, %d threads; model: %s (%s), compute %s\n\n", cpu_model().c_str(),
              omp_get_max_threads(), engine.checkpoint().dir().string().c_str(),
              engine.config().architecture.c_str(),
              compute_type_name(engine.compute_type()).c_str());
  if (!note.empty()) std::printf("%s\n\n", note.c_str());
  std::printf("| measurement | value | physical limit | achieved / limit |\n");
  std::printf("|---|---|---|---|\n");
}

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

}  // namespace

int run_decode_bench(const DecodeBenchOptions& opts) {
  auto engine = Engine::load(opts.model, {opts.dtype, true, opts.cuda_device});
  const bool gpu = opts.cuda_device >= 0;
  // The limit: DRAM read bandwidth on the CPU, the device's copy bandwidth on a GPU.
  auto bandwidth = [&] {
    return gpu ? measure_gpu_copy_bandwidth(opts.cuda_device)
               : measure_read_bandwidth(int64_t{512} << 20);
  };
  const std::string limit_name =
      gpu ? "measured cuda:" + std::to_string(opts.cuda_device) + " copy (read + write)"
          : "measured DRAM read";
  const ModelConfig& c = engine->config();
  std::mt19937_64 rng(opts.seed);
  std::vector<SequenceTokens> step;
  for (int64_t s = 0; s < opts.batch; ++s)
    step.push_back({static_cast<uint64_t>(s), random_tokens(rng, opts.prompt, c.vocab_size)});
  std::vector<float> logits = engine->forward(step);  // prefill
  auto next_step = [&]() {
    for (int64_t s = 0; s < opts.batch; ++s)
      step[s].tokens = {argmax(logits.data() + s * c.vocab_size, c.vocab_size)};
  };
  for (int warm = 0; warm < 2; ++warm) {
    next_step();
    logits = engine->forward(step);
  }
  // The VM's memory bandwidth drifts by tens of percent from minute to minute, so each round
  // pairs a bandwidth measurement with the decode steps timed right after it; the table reports
  // every round and the median ratio.
  const double kv_row = 2.0 * c.num_layers * c.num_kv_heads * c.head_dim * sizeof(float);
  struct Round {
    double bandwidth, secs, bytes, weight_bytes, kv_bytes;
    double ratio() const { return bytes / secs / bandwidth; }
  };
  std::vector<Round> rounds;
  for (int64_t round = 0; round < opts.rounds; ++round) {
    std::fprintf(stderr, "round %lld: measuring bandwidth, then %lld steps...\n",
                 static_cast<long long>(round + 1), static_cast<long long>(opts.tokens));
    Round r{bandwidth(), 0, 0, 0, 0};
    const double t0 = now_seconds();
    for (int64_t t = 0; t < opts.tokens; ++t) {
      next_step();
      StepStats stats;
      for (int64_t s = 0; s < opts.batch; ++s)
        r.kv_bytes += kv_row * (engine->sequence_length(s) + 1);
      logits = engine->forward(step, false, &stats);
      r.weight_bytes += stats.weight_bytes;
    }
    r.secs = now_seconds() - t0;
    r.bytes = r.weight_bytes + r.kv_bytes;
    rounds.push_back(r);
  }

  const int64_t moe_layers = std::count(c.layer_is_moe.begin(), c.layer_is_moe.end(), true);
  // Decode steps of batch * top_k <= kSmallBatchPairsMax pairs take the experts' small-batch
  // path, which waits for nothing; larger ones wait once per MoE layer for cuBLAS's counts.
  const bool small_batch = kernels::cuda::expert_stage_takes_small_batch(opts.batch, c.top_k);
  const std::string step_note =
      gpu ? "step: device-resident on cuda:" + std::to_string(opts.cuda_device) +
                " (hidden state on the GPU; by design " +
                std::to_string(small_batch ? 1 : moe_layers + 1) +
                (small_batch ? " host synchronisation per step: the logits' copy (the experts' "
                               "small-batch path reads the routing on the device)"
                             : " host synchronisations per step: one per MoE layer for the "
                               "expert counts cuBLAS needs, one for the logits") +
                ")"
          : "";
  print_header("decode: batch " + std::to_string(opts.batch) + ", " + std::to_string(opts.rounds) +
                   " rounds of " + std::to_string(opts.tokens) + " steps",
               *engine, step_note);
  for (size_t i = 0; i < rounds.size(); ++i) {
    const Round& r = rounds[i];
    const double steps = static_cast<double>(opts.tokens);
    std::printf("| round %zu: tokens/s | %.1f | %.1f (%s per step at %.2f GB/s %s) | %.0f%% |\n",
                i + 1, opts.batch * steps / r.secs, opts.batch * steps * r.bandwidth / r.bytes,
                format_bytes(r.bytes / steps).c_str(), r.bandwidth / 1e9, limit_name.c_str(),
                100.0 * r.ratio());
  }
  std::vector<double> ratios;
  for (const Round& r : rounds) ratios.push_back(r.ratio());
  std::sort(ratios.begin(), ratios.end());
  const Round& first = rounds.front();
  std::printf("| bytes read per step | %s (weights %s, KV cache %s) | | |\n",
              format_bytes(first.bytes / opts.tokens).c_str(),
              format_bytes(first.weight_bytes / opts.tokens).c_str(),
              format_bytes(first.kv_bytes / opts.tokens).c_str());
  std::printf("| **median** | | | **%.0f%%** of the bandwidth limit |\n",
              100.0 * ratios[ratios.size() / 2]);
  return 0;
}

int run_prefill_bench(const PrefillBenchOptions& opts) {
  auto engine = Engine::load(opts.model, {opts.dtype, true});
  const ModelConfig& c = engine->config();
  std::mt19937_64 rng(1);
  const auto prompt = random_tokens(rng, opts.tokens, c.vocab_size);
  std::fprintf(stderr, "measuring fp32 FMA peak...\n");
  const double peak = measure_fma_peak();
  double best = 1e30;
  StepStats stats;
  for (int64_t r = 0; r < opts.repeats + 1; ++r) {
    const uint64_t id = 1000 + r;
    const double t0 = now_seconds();
    engine->forward({{id, prompt}}, false, &stats);
    const double secs = now_seconds() - t0;
    engine->release(id);
    if (r > 0) best = std::min(best, secs);  // the first run warms caches and pages
  }
  // Matmul FLOPs of the pass: every non-expert matrix over all rows, the experts over the rows
  // routed to them, attention scores and values over the causal triangle, the LM head once.
  const int64_t n = opts.tokens, d = c.hidden_size, q = c.num_heads * c.head_dim,
                kv = c.num_kv_heads * c.head_dim;
  double flops = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    flops += 2.0 * n * (d * q + 2 * d * kv + q * d);
    flops += 2.0 * c.num_heads * c.head_dim * 2.0 * (n * (n + 1) / 2.0);
    if (c.layer_is_moe[l]) {
      flops += 2.0 * n * (c.num_experts * d + 3 * d * c.shared_intermediate);
    } else {
      flops += 2.0 * n * 3 * d * c.dense_intermediate;
    }
  }
  flops += 2.0 * stats.expert_rows * 3 * d * c.expert_intermediate;
  flops += 2.0 * d * c.vocab_size;
  print_header("prefill: " + std::to_string(n) + "-token prompt", *engine);
  std::printf("| prefill tokens/s | %.1f | %.1f (FLOPs / FMA peak) | %.0f%% |\n", n / best,
              n * peak / flops, 100.0 * flops / best / peak);
  std::printf("| prefill time | %.1f ms | %.1f ms | |\n", 1e3 * best, 1e3 * flops / peak);
  std::printf("| compute | %.1f GFLOP/s | %.1f GFLOP/s (measured fp32 FMA peak) | %.0f%% |\n",
              flops / best / 1e9, peak / 1e9, 100.0 * flops / best / peak);
  return 0;
}

int run_machine_bench() {
  std::printf("machine: %s, %d threads\n", cpu_model().c_str(), omp_get_max_threads());
  std::printf("DRAM read bandwidth: %.2f GB/s\n", measure_read_bandwidth() / 1e9);
  std::printf("fp32 FMA peak: %.1f GFLOP/s\n", measure_fma_peak() / 1e9);
  return 0;
}

}  // namespace moeflow::bench
