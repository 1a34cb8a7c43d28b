// The Engine with the whole model on cuda:0 (the device-resident step, model/gpu_engine_step.h)
// against the CPU Engine, both on bf16 weights, on the golden checkpoints of the four families
// (mixtral; qwen2_moe with qkv biases and a gated shared expert; olmoe with q/k norm; deepseek
// with a dense first layer and shared experts). One run walks a ragged prefill (all positions),
// decode steps, a prefill mixed with decodes (only the last rows' logits: the packed-rows path),
// two elastic budgets, a rolled-back sequence and a released one started again - all within the
// experts' small-batch path (<= 64 pairs) - then a 41-row step on the cuBLAS path. Tokens are drawn
// fresh each run; both engines get the same tokens (the CPU's greedy choices).
//
// Checks per step: logits ||gpu - cpu|| / ||cpu|| < 2e-2 (bf16 activations into the GEMMs on the
// GPU) and the same greedy token where the CPU's top-2 margin is clear; StepStats rows and
// expert_rows equal; cache lengths equal. Routing is discrete, so it is compared honestly: a CPU
// probe (the Engine's own loop, checked to give the CPU Engine's logits and use) reports per MoE
// layer the rows whose k-th and (k+1)-th gate logits lie within bf16 noise of each other; only
// those rows may route differently, so per layer sum |use_gpu - use_cpu| <= 2 k * (near-tie
// rows), exact where there are none; expert_bytes equal wherever the use matches. A row that did
// take another expert changes its sequence's outputs by more than bf16 noise, so where a layer's
// use differs, the sequences of its near-tie rows are tainted (until released) and their logits
// are printed, not bounded; the counts are printed per step to show how much was checked. GPU
// only: skips "no CUDA device" elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "model/checkpoint.h"
#include "model/engine.h"
#include "model/expert_shard.h"
#include "model/router_model.h"
#include "model/sampler.h"
#include "model/step_plan.h"
#include "model/weights.h"
#include "tests/support/golden.h"
#include "tests/support/relative_error.h"

namespace moeflow {
namespace {

using test_support::relative_error;

// Engine::forward's CPU loop over the same RouterModel and ExpertShard, also counting per MoE
// layer the rows whose top-k set is within bf16 noise of another (a near-tie at the k-th choice).
struct CpuProbe {
  ModelConfig cfg;
  Checkpoint ckpt;
  WeightStore store;
  RouterWeights gates;  // for the gate logits (fp32 as the stages use them)
  std::unique_ptr<RouterModel> router;
  std::unique_ptr<ExpertShard> experts;
  // Of the last step: per layer, which rows were near-ties; per row its sequence; the rows
  // whose logits were returned.
  std::vector<std::vector<uint8_t>> tied;
  std::vector<uint64_t> row_seq;
  std::vector<int64_t> output_rows;

  explicit CpuProbe(const std::filesystem::path& dir)
      : cfg(load_model_config(dir)),
        ckpt(Checkpoint::open(dir)),
        gates(load_router_weights(ckpt, cfg, ComputeType::bf16, store)),
        router(RouterModel::load(dir, "bf16", {})),
        experts(ExpertShard::load(dir, "bf16", {}, {})) {}

  // The GPU's rows differ by ~1e-2 relative after bf16 GEMMs, so its gate logits by ~1e-2 of
  // their size: a gap under 5e-2 + 2e-2 * max |logit| may be ordered either way.
  bool near_tie(int64_t layer, const float* row, int64_t k, const std::vector<uint8_t>& allowed) {
    const int64_t d = cfg.hidden_size;
    std::vector<double> logits;
    double largest = 0.0;
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      if (!allowed.empty() && !allowed[e]) continue;
      double s = 0.0;
      for (int64_t i = 0; i < d; ++i)
        s += double(row[i]) * gates.layers[layer].router_gate[e * d + i];
      logits.push_back(s);
      largest = std::max(largest, std::fabs(s));
    }
    if (static_cast<int64_t>(logits.size()) <= k) return false;  // every allowed expert chosen
    std::sort(logits.begin(), logits.end(), std::greater<>());
    return logits[k - 1] - logits[k] < 5e-2 + 2e-2 * largest;
  }

  std::vector<float> forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                             StepStats& stats, const ExpertBudget& budget) {
    KvCacheState& cache = router->cache();
    const StepPlan plan = plan_step(batch, cache, all_positions);
    const int64_t n = plan.layout.rows(), d = cfg.hidden_size, E = cfg.num_experts;
    std::vector<float> hidden(n * d), routed(n * d);
    router->embed(plan.tokens.data(), n, hidden.data());
    stats = StepStats{};
    stats.rows = n;
    stats.expert_use.assign(cfg.num_layers * E, 0);
    tied.assign(cfg.num_layers, std::vector<uint8_t>(n, 0));
    row_seq = plan.layout.row_seq_ids;
    output_rows = plan.output_rows;
    for (int64_t l = 0; l < cfg.num_layers; ++l) {
      const TokenBatch tb = router->attend_and_route(l, plan.layout, hidden.data(), budget);
      if (!cfg.layer_is_moe[l]) continue;
      stats.expert_bytes += experts->bytes_touched(tb);
      stats.expert_rows += experts->run(tb, routed.data());
      for (int32_t e : tb.experts) ++stats.expert_use[l * E + e];
      const std::vector<uint8_t> allowed = resident_mask(budget, cfg, l);
      for (int64_t r = 0; r < n; ++r) tied[l][r] = near_tie(l, tb.row(r), tb.top_k, allowed);
      router->combine(tb, routed.data(), hidden.data());
    }
    for (const auto& s : plan.layout.sequences) cache.commit(s.seq_id, s.count);
    std::vector<float> logits(plan.output_rows.size() * cfg.vocab_size);
    router->logits(hidden.data(), plan.output_rows, logits.data());
    return logits;
  }
};

struct SideBySide {
  std::string family;
  ModelConfig cfg;
  std::unique_ptr<Engine> cpu, gpu;
  CpuProbe probe;

  explicit SideBySide(const std::string& name)
      : family(name),
        cfg(load_model_config(test_support::golden_dir(family))),
        cpu(Engine::load(test_support::golden_dir(family), {"bf16", false, -1})),
        gpu(Engine::load(test_support::golden_dir(family), {"bf16", false, 0})),
        probe(test_support::golden_dir(family)) {}

  // One step of all three; returns the CPU's greedy token per output row.
  std::vector<int32_t> step(const std::string& name, const std::vector<SequenceTokens>& batch,
                            bool all_positions, const ExpertBudget& budget = {}) {
    SCOPED_TRACE(name);
    const int64_t V = cfg.vocab_size, E = cfg.num_experts;
    StepStats sc, sg, sp;
    const std::vector<float> lc = cpu->forward(batch, all_positions, &sc, budget);
    const std::vector<float> lp = probe.forward(batch, all_positions, sp, budget);
    const std::vector<float> lg = gpu->forward(batch, all_positions, &sg, budget);
    // The probe is the CPU Engine's loop: same logits, same routing.
    EXPECT_LT(relative_error(lp, lc), 1e-6) << "probe vs CPU engine";
    EXPECT_EQ(sp.expert_use, sc.expert_use) << "probe vs CPU engine";

    if (lg.size() != lc.size() || sg.expert_use.size() != sc.expert_use.size()) {
      ADD_FAILURE() << "GPU logits " << lg.size() << " vs " << lc.size() << ", expert use "
                    << sg.expert_use.size() << " vs " << sc.expert_use.size();
      return greedy(lc);
    }
    EXPECT_EQ(sg.rows, sc.rows);
    EXPECT_EQ(sg.expert_rows, sc.expert_rows) << "every expert held: n * k pairs per MoE layer";

    // Routing: only near-tie rows may differ. A layer whose use differs taints the sequences of
    // its near-tie rows: one of them took another expert, so its logits (and through its cache
    // rows, its later ones) may legitimately differ by more than bf16 noise.
    int64_t differing = 0, ties = 0;
    for (int64_t l = 0; l < cfg.num_layers; ++l) {
      int64_t diff = 0, sum_c = 0, sum_g = 0, near = 0;
      for (int64_t e = 0; e < E; ++e) {
        diff += std::llabs(sg.expert_use[l * E + e] - sc.expert_use[l * E + e]);
        sum_c += sc.expert_use[l * E + e];
        sum_g += sg.expert_use[l * E + e];
      }
      for (uint8_t t : probe.tied[l]) near += t;
      EXPECT_EQ(sum_g, sum_c) << "layer " << l << ": pairs routed";
      const int64_t k = sum_c / std::max<int64_t>(sc.rows, 1);
      EXPECT_LE(diff, 2 * k * near)
          << "layer " << l << ": routing differs beyond the " << near << " near-tie rows";
      if (diff > 0)
        for (size_t r = 0; r < probe.tied[l].size(); ++r)
          if (probe.tied[l][r]) tainted.insert(probe.row_seq[r]);
      differing += diff;
      ties += near;
    }
    if (differing == 0) {
      EXPECT_EQ(sg.expert_bytes, sc.expert_bytes);
    }
    EXPECT_GT(sg.expert_bytes, 0);
    EXPECT_EQ(sg.weight_bytes - sg.expert_bytes, gpu_router_bytes(sg));

    // Logits of the rows of untainted sequences: bf16 bound, same clear greedy choice.
    std::vector<float> strict_cpu, strict_gpu;
    const int64_t rows = static_cast<int64_t>(lc.size()) / V;
    int64_t clear = 0;
    for (int64_t i = 0; i < rows; ++i) {
      if (tainted.count(probe.row_seq[probe.output_rows[i]])) continue;
      const float* c = lc.data() + i * V;
      const float* g = lg.data() + i * V;
      strict_cpu.insert(strict_cpu.end(), c, c + V);
      strict_gpu.insert(strict_gpu.end(), g, g + V);
      const int64_t best = argmax(c, V);
      float second = -INFINITY, spread = 0.0f;
      for (int64_t t = 0; t < V; ++t) {
        if (t != best) second = std::max(second, c[t]);
        spread = std::max(spread, std::fabs(c[t]));
      }
      if (c[best] - second > 2e-2f * std::max(spread, 1.0f)) {  // a clear greedy choice
        ++clear;
        EXPECT_EQ(argmax(g, V), best) << "output row " << i;
      }
    }
    const double err = relative_error(strict_gpu, strict_cpu);
    EXPECT_LT(err, 2e-2) << "logits of the untainted rows";
    for (const SequenceTokens& s : batch)
      EXPECT_EQ(gpu->sequence_length(s.seq_id), cpu->sequence_length(s.seq_id)) << s.seq_id;
    std::printf(
        "%s %s: logits error %.2e over %lld/%lld untainted rows (all rows %.2e), %lld with a clear "
        "greedy token; expert use differs by %lld with %lld near-tie (row, layer)s; %zu "
        "sequences tainted so far\n",
        family.c_str(), name.c_str(), err, static_cast<long long>(strict_cpu.size() / V),
        static_cast<long long>(rows), relative_error(lg, lc), static_cast<long long>(clear),
        static_cast<long long>(differing), static_cast<long long>(ties), tainted.size());
    return greedy(lc);
  }

  // A released sequence starts again from nothing: no taint carried over.
  void release(uint64_t seq) {
    cpu->release(seq);
    gpu->release(seq);
    probe.router->cache().release(seq);
    tainted.erase(seq);
  }

  std::vector<int32_t> greedy(const std::vector<float>& logits) const {
    std::vector<int32_t> next;
    for (size_t i = 0; i < logits.size(); i += cfg.vocab_size)
      next.push_back(static_cast<int32_t>(argmax(logits.data() + i, cfg.vocab_size)));
    return next;
  }

  // The GPU engine's router bytes per step: constant, so the first step's fixes it.
  int64_t gpu_router_bytes(const StepStats& s) {
    if (router_bytes_ < 0) router_bytes_ = s.weight_bytes - s.expert_bytes;
    return router_bytes_;
  }
  int64_t router_bytes_ = -1;
  std::set<uint64_t> tainted;  // sequences that took another expert at a near-tie
};

TEST(GpuEngineStep, MatchesTheCpuEngineOnGoldenCheckpoints) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count == 0) GTEST_SKIP() << "no CUDA device (" << devices.error << ")";
  std::mt19937 rng(std::random_device{}());
  for (const char* family : {"mixtral", "qwen2_moe", "olmoe", "deepseek"}) {
    SCOPED_TRACE(family);
    SideBySide s(family);
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(s.cfg.vocab_size - 1));
    auto prompt = [&](int64_t n) {
      std::vector<int32_t> t(n);
      for (int32_t& x : t) x = token(rng);
      return t;
    };
    // Ragged prefill, every position's logits (no packing: rows are the output).
    std::vector<int32_t> next =
        s.step("prefill", {{11, prompt(5)}, {22, prompt(1)}, {33, prompt(9)}},
               /*all_positions=*/true);
    std::vector<int32_t> last = {next[4], next[5], next[14]};
    for (int t = 0; t < 3; ++t)
      last = s.step("decode " + std::to_string(t),
                    {{11, {last[0]}}, {22, {last[1]}}, {33, {last[2]}}}, false);
    // A prefill between decodes: the last rows of each sequence are packed for the logits.
    next = s.step("mixed", {{11, {last[0]}}, {44, prompt(6)}, {22, {last[1]}}}, false);
    // Elastic budgets: top-1 among the even experts; the model's k among the first half.
    ExpertBudget even;
    even.top_k = 1;
    even.resident.resize(s.cfg.num_layers);
    for (auto& layer : even.resident)
      for (int32_t e = 0; e < s.cfg.num_experts; e += 2) layer.push_back(e);
    next =
        s.step("budget top-1 of the even experts",
               {{11, {next[0]}}, {44, {next[1]}}, {22, {next[2]}}, {33, {last[2]}}}, false, even);
    ExpertBudget half;
    half.resident.resize(s.cfg.num_layers);
    for (auto& layer : half.resident)
      for (int32_t e = 0; e < s.cfg.num_experts / 2; ++e) layer.push_back(e);
    next =
        s.step("budget of the first half",
               {{11, {next[0]}}, {44, {next[1]}}, {22, {next[2]}}, {33, {next[3]}}}, false, half);
    // A speculative rollback: two tokens dropped from 11, then two new ones in one step.
    for (Engine* e : {s.cpu.get(), s.gpu.get()}) e->truncate(11, e->sequence_length(11) - 2);
    s.probe.router->cache().truncate(11, s.probe.router->cache().length(11) - 2);
    next = s.step("after a rollback", {{11, {next[0], next[1]}}, {33, {next[3]}}}, true);
    // A released sequence started again, beside a decode.
    s.release(22);
    EXPECT_EQ(s.gpu->sequence_length(22), 0);
    next = s.step("restart", {{22, prompt(3)}, {44, {next[0]}}}, false);
    // Every step so far has at most 64 (row, choice) pairs per MoE layer at top-2 (15 rows at
    // most): the experts' small-batch path. 41 rows (82 pairs) take the cuBLAS path, with its
    // per-layer count wait, in the same engine.
    s.step("a prefill past the small-batch limit", {{55, prompt(40)}, {44, {next[1]}}}, false);
  }
}

}  // namespace
}  // namespace moeflow
