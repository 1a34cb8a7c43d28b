#include "bench/speculative_bench.h"

#include "bench/bench_args.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_clock.h"
#include "bench/machine_limits.h"
#include "core/error.h"
#include "core/format.h"
#include "model/engine.h"
#include "model/sampler.h"
#include "model/speculative.h"
#include "tokenizer/tokenizer.h"

namespace moeflow::bench {
namespace {

// What one timed run measured (the first token of each sequence, made with its prefill, is not
// timed in either mode).
struct Run {
  double seconds = 0;
  int64_t tokens = 0;
  int64_t expert_bytes = 0, weight_bytes = 0;
  SpeculativeStats stats;  // speculative runs: the timed part only
  double tokens_per_second() const { return tokens / seconds; }
};

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

void add_pass(PassCounters& to, const PassCounters& a, const PassCounters& b, int sign) {
  to.passes = a.passes + sign * b.passes;
  to.rows = a.rows + sign * b.rows;
  to.seconds = a.seconds + sign * b.seconds;
  to.expert_bytes = a.expert_bytes + sign * b.expert_bytes;
  to.weight_bytes = a.weight_bytes + sign * b.weight_bytes;
}

SpeculativeStats minus(const SpeculativeStats& a, const SpeculativeStats& b) {
  SpeculativeStats d;
  d.rounds = a.rounds - b.rounds;
  d.speculative_rounds = a.speculative_rounds - b.speculative_rounds;
  d.plain_rounds = a.plain_rounds - b.plain_rounds;
  d.drafted = a.drafted - b.drafted;
  d.accepted = a.accepted - b.accepted;
  d.emitted = a.emitted - b.emitted;
  for (int i = 0; i < kMaxDraftPositions; ++i) {
    d.drafted_at[i] = a.drafted_at[i] - b.drafted_at[i];
    d.accepted_at[i] = a.accepted_at[i] - b.accepted_at[i];
  }
  for (int i = 0; i < kSpeculationReasons; ++i) d.decisions[i] = a.decisions[i] - b.decisions[i];
  add_pass(d.draft, a.draft, b.draft, -1);
  add_pass(d.verify, a.verify, b.verify, -1);
  add_pass(d.plain, a.plain, b.plain, -1);
  add_pass(d.catch_up, a.catch_up, b.catch_up, -1);
  return d;
}

Run run_plain(Engine& engine, const std::vector<std::vector<int32_t>>& prompts, int64_t tokens) {
  const int64_t V = engine.config().vocab_size, B = static_cast<int64_t>(prompts.size());
  const uint64_t base = 1u << 20;
  std::vector<SequenceTokens> step;
  for (int64_t s = 0; s < B; ++s) step.push_back({base + s, prompts[s]});
  std::vector<float> logits = engine.forward(step);
  Run r;
  const double t0 = now_seconds();
  for (int64_t t = 1; t < tokens; ++t) {
    for (int64_t s = 0; s < B; ++s) step[s].tokens = {argmax(logits.data() + s * V, V)};
    StepStats stats;
    logits = engine.forward(step, false, &stats);
    r.expert_bytes += stats.expert_bytes;
    r.weight_bytes += stats.weight_bytes;
  }
  r.seconds = now_seconds() - t0;
  r.tokens = B * (tokens - 1);
  for (int64_t s = 0; s < B; ++s) engine.release(base + s);
  return r;
}

// One generation on `decoder`, which outlives it: like a server's, its controller keeps what it
// measured in earlier generations.
Run run_speculative(SpeculativeDecoder& decoder, const std::vector<std::vector<int32_t>>& prompts,
                    int64_t tokens) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  const uint64_t base = 1u << 21;
  std::vector<int64_t> have(B, 0);
  std::vector<SpeculativeRequest> step;
  for (int64_t s = 0; s < B; ++s) {
    decoder.add(base + s, prompts[s], SamplingParams{});
    step.push_back({base + s, 2});
  }
  // Untimed: both prefills and a first short round.
  auto first = decoder.step(step);
  for (int64_t s = 0; s < B; ++s) have[s] = static_cast<int64_t>(first[s].size());
  const SpeculativeStats before = decoder.stats();
  Run r;
  const double t0 = now_seconds();
  std::vector<int64_t> active;
  for (int64_t s = 0; s < B; ++s) {
    r.tokens += tokens - have[s];
    if (have[s] < tokens) active.push_back(s);
  }
  while (!active.empty()) {
    step.clear();
    for (int64_t s : active) step.push_back({base + s, tokens - have[s]});
    const auto out = decoder.step(step);
    std::vector<int64_t> still;
    for (size_t j = 0; j < active.size(); ++j) {
      have[active[j]] += static_cast<int64_t>(out[j].size());
      if (have[active[j]] < tokens) still.push_back(active[j]);
    }
    active = std::move(still);
  }
  r.seconds = now_seconds() - t0;
  r.stats = minus(decoder.stats(), before);
  for (const PassCounters* p :
       {&r.stats.draft, &r.stats.verify, &r.stats.plain, &r.stats.catch_up}) {
    r.expert_bytes += p->expert_bytes;
    r.weight_bytes += p->weight_bytes;
  }
  for (int64_t s = 0; s < B; ++s) decoder.finish(base + s);
  return r;
}

// The drafter's own routing over a short greedy run: the `per_layer` experts it uses most.
std::vector<std::vector<int32_t>> observe_resident(Engine& engine, const ExpertBudget& draft,
                                                   int64_t per_layer, uint64_t seed,
                                                   int64_t prompt) {
  const ModelConfig& c = engine.config();
  std::mt19937_64 rng(seed + 7);
  std::vector<SequenceTokens> step;
  for (int64_t s = 0; s < 4; ++s)
    step.push_back(
        {(uint64_t{1} << 22) + static_cast<uint64_t>(s), random_tokens(rng, prompt, c.vocab_size)});
  std::vector<int64_t> use(c.num_layers * c.num_experts, 0);
  for (int64_t t = 0; t < 16; ++t) {
    StepStats stats;
    const auto logits = engine.forward(step, false, &stats, draft);
    for (size_t i = 0; i < use.size(); ++i) use[i] += stats.expert_use[i];
    for (size_t s = 0; s < step.size(); ++s)
      step[s].tokens = {argmax(logits.data() + s * c.vocab_size, c.vocab_size)};
  }
  for (const auto& s : step) engine.release(s.seq_id);
  return most_used_experts(use, c, per_layer);
}

// English prompts where the model has a tokenizer (the demo model writes fortunes: what it
// drafts and accepts on text is what a user would see), else random tokens.
std::vector<std::vector<int32_t>> make_prompts(const std::string& model, int64_t batch,
                                               int64_t length, int64_t vocab, uint64_t seed) {
  static const char* const kTexts[] = {
      "A man walks into a bar",
      "You will meet a tall dark stranger",
      "The best way to predict the future is",
      "Q: Why did the programmer quit his job?\nA:",
      "Never trust a computer you",
      "It is a truth universally acknowledged that",
      "Today is a good day to",
      "If at first you don't succeed,",
  };
  std::vector<std::vector<int32_t>> prompts;
  if (std::filesystem::exists(std::filesystem::path(model) / "tokenizer.json")) {
    const Tokenizer tokenizer = Tokenizer::load(model);
    for (int64_t s = 0; s < batch; ++s)
      prompts.push_back(tokenizer.encode(kTexts[s % std::size(kTexts)], false));
    return prompts;
  }
  std::mt19937_64 rng(seed + batch);
  for (int64_t s = 0; s < batch; ++s) prompts.push_back(random_tokens(rng, length, vocab));
  return prompts;
}

std::string setting_name(int64_t gamma) {
  if (gamma < 0) return "plain";
  return gamma == 0 ? "speculative, adaptive γ" : "speculative, γ " + std::to_string(gamma);
}

std::string per_position(const SpeculativeStats& s) {
  std::string out;
  for (int i = 0; i < kMaxDraftPositions && s.drafted_at[i] > 0; ++i) {
    // Acceptance at position i given every earlier draft was accepted.
    const int64_t reached =
        i == 0 ? s.drafted_at[0] : std::min(s.drafted_at[i], s.accepted_at[i - 1]);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.0f", out.empty() ? "" : "/",
                  reached > 0 ? 100.0 * s.accepted_at[i] / reached : 0.0);
    out += buf;
  }
  return out.empty() ? "-" : out + " %";
}

std::string decisions(const SpeculativeStats& s) {
  std::string out;
  for (int i = 0; i < kSpeculationReasons; ++i) {
    if (s.decisions[i] == 0) continue;
    if (!out.empty()) out += ", ";
    out += reason_name(static_cast<SpeculationReason>(i)) + " " + std::to_string(s.decisions[i]);
  }
  return out;
}

}  // namespace

std::vector<int64_t> parse_gamma_list(const std::string& text) {
  std::vector<int64_t> out;
  for (const std::string& item : split_list(text)) {
    const auto value =
        item == "adaptive" ? std::optional<int64_t>(0) : parse_count(item, kMaxDraftPositions);
    if (!value)
      throw Error("--gamma \"" + text + "\": \"" + item + "\" is neither 1.." +
                  std::to_string(kMaxDraftPositions) + " nor \"adaptive\"");
    out.push_back(*value);
  }
  return out;
}

int run_speculative_bench(const SpeculativeBenchOptions& opts) {
  if (opts.batches.empty() || opts.gammas.empty() || opts.tokens < 2 || opts.prompt < 1 ||
      opts.rounds < 1)
    throw Error("speculative bench: batches, gammas, tokens >= 2, prompt and rounds must be given");
  auto engine = Engine::load(opts.model, {opts.dtype, true});
  const ModelConfig& c = engine->config();
  SpeculativeOptions base;
  base.draft.top_k = opts.draft_top_k;
  validate(base.draft, c);
  std::printf("## speculative decoding: %s\n\n", engine->checkpoint().dir().string().c_str());
  std::printf(
      "machine: %s, %d threads; model: %s, %lld layers, %lld experts, top-%lld, "
      "compute %s\n",
      cpu_model().c_str(), omp_get_max_threads(), c.architecture.c_str(),
      static_cast<long long>(c.num_layers), static_cast<long long>(c.num_experts),
      static_cast<long long>(c.top_k), compute_type_name(engine->compute_type()).c_str());
  std::printf("greedy; prompts: %s; %lld tokens per sequence (the first untimed); draft: top-%lld",
              std::filesystem::exists(std::filesystem::path(opts.model) / "tokenizer.json")
                  ? "English sentences (tokenizer.json)"
                  : (std::to_string(opts.prompt) + " random tokens").c_str(),
              static_cast<long long>(opts.tokens), static_cast<long long>(opts.draft_top_k));
  if (opts.resident > 0) {
    base.draft.resident =
        observe_resident(*engine, base.draft, opts.resident, opts.seed, opts.prompt);
    std::printf(", resident set of %lld experts per layer chosen from the drafter's routing:",
                static_cast<long long>(opts.resident));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      if (!c.layer_is_moe[l]) continue;
      std::printf(" L%lld {", static_cast<long long>(l));
      for (size_t i = 0; i < base.draft.resident[l].size(); ++i)
        std::printf("%s%d", i ? "," : "", base.draft.resident[l][i]);
      std::printf("}");
    }
  }
  std::printf("\n\n");
  std::printf(
      "| batch | decoding | tokens/s | vs plain | acceptance | per position | "
      "tokens/round/seq | expert bytes/token | all weights/token | DRAM limit tokens/s "
      "| decisions |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");

  std::vector<int64_t> settings = {-1};  // -1: plain
  settings.insert(settings.end(), opts.gammas.begin(), opts.gammas.end());
  for (int64_t batch : opts.batches) {
    const auto prompts = make_prompts(opts.model, batch, opts.prompt, c.vocab_size, opts.seed);
    std::fprintf(stderr, "batch %lld: measuring read bandwidth...\n",
                 static_cast<long long>(batch));
    const double bandwidth = measure_read_bandwidth(int64_t{512} << 20);
    std::vector<std::vector<Run>> runs(settings.size());
    // One decoder per setting for all rounds, warmed up by an untimed generation (the adaptive
    // controller's measuring rounds happen there, once, as in a long-running server).
    std::vector<std::unique_ptr<SpeculativeDecoder>> decoders(settings.size());
    run_plain(*engine, prompts, 4);  // warm caches and pages
    for (size_t i = 0; i < settings.size(); ++i) {
      if (settings[i] < 0) continue;
      SpeculativeOptions o = base;
      o.control.adaptive = settings[i] == 0;
      o.control.gamma = settings[i] == 0 ? 4 : settings[i];
      decoders[i] = std::make_unique<SpeculativeDecoder>(*engine, o);
      run_speculative(*decoders[i], prompts, std::min<int64_t>(opts.tokens, 32));
    }
    for (int64_t round = 0; round < opts.rounds; ++round) {
      for (size_t k = 0; k < settings.size(); ++k) {
        const size_t i = (k + round) % settings.size();  // rotate: drift hits every setting
        std::fprintf(stderr, "batch %lld, round %lld: %s\n", static_cast<long long>(batch),
                     static_cast<long long>(round + 1), setting_name(settings[i]).c_str());
        if (settings[i] < 0) {
          runs[i].push_back(run_plain(*engine, prompts, opts.tokens));
        } else {
          runs[i].push_back(run_speculative(*decoders[i], prompts, opts.tokens));
        }
      }
    }
    std::vector<double> plain_tps;
    for (const Run& r : runs[0]) plain_tps.push_back(r.tokens_per_second());
    const double plain = median(plain_tps);
    for (size_t i = 0; i < settings.size(); ++i) {
      std::vector<double> tps;
      SpeculativeStats total;
      double expert = 0, weights = 0, tokens = 0;
      for (const Run& r : runs[i]) {
        tps.push_back(r.tokens_per_second());
        expert += r.expert_bytes;
        weights += r.weight_bytes;
        tokens += r.tokens;
        total.drafted += r.stats.drafted;
        total.accepted += r.stats.accepted;
        total.emitted += r.stats.emitted;
        total.speculative_rounds += r.stats.speculative_rounds;
        for (int p = 0; p < kMaxDraftPositions; ++p) {
          total.drafted_at[p] += r.stats.drafted_at[p];
          total.accepted_at[p] += r.stats.accepted_at[p];
        }
        for (int p = 0; p < kSpeculationReasons; ++p) total.decisions[p] += r.stats.decisions[p];
      }
      const double tps_med = median(tps);
      const bool spec = settings[i] >= 0;
      std::string per_round = "1";
      if (spec && total.speculative_rounds > 0) {
        // Tokens per sequence per speculative round: accepted drafts + the correction/bonus.
        int64_t seq_rounds = total.drafted_at[0] > 0 ? total.drafted_at[0] : 1;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f",
                      1.0 + static_cast<double>(total.accepted) / seq_rounds);
        per_round = buf;
      }
      std::printf(
          "| %lld | %s | %.1f | %.2f× | %s | %s | %s | %s | %s | %.1f | %s |\n",
          static_cast<long long>(batch), setting_name(settings[i]).c_str(), tps_med,
          tps_med / plain,
          spec && total.drafted > 0
              ? (std::to_string(static_cast<int>(100.0 * total.acceptance_rate() + 0.5)) + "%")
                    .c_str()
              : "-",
          spec ? per_position(total).c_str() : "-", per_round.c_str(),
          format_bytes(expert / tokens).c_str(), format_bytes(weights / tokens).c_str(),
          bandwidth / (weights / tokens), spec ? decisions(total).c_str() : "-");
    }
    std::printf("| %lld | DRAM read bandwidth | %.2f GB/s | | | | | | | | |\n",
                static_cast<long long>(batch), bandwidth / 1e9);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace moeflow::bench
