#include "model/generator.h"

#include <algorithm>

#include "core/error.h"

namespace moeflow {

std::vector<GenerationResult> generate(Engine& engine,
                                       const std::vector<GenerationRequest>& requests) {
  const ModelConfig& cfg = engine.config();
  const int64_t n = static_cast<int64_t>(requests.size());
  std::vector<GenerationResult> results(n);
  std::vector<Sampler> samplers;
  std::vector<SequenceTokens> step;
  std::vector<int64_t> active;  // request index of each entry of `step`
  // Sequence ids of this call: far from any the caller may hold.
  const uint64_t base = 1ull << 62;
  for (int64_t i = 0; i < n; ++i) {
    if (requests[i].prompt.empty()) throw Error("request " + std::to_string(i) + ": empty prompt");
    if (requests[i].max_tokens < 1) throw Error("max_tokens must be at least 1");
    samplers.emplace_back(requests[i].sampling);
    step.push_back({base + i, requests[i].prompt});
    active.push_back(i);
  }
  auto is_eos = [&](int32_t t) {
    return std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), t) !=
           cfg.eos_token_ids.end();
  };
  while (!step.empty()) {
    const std::vector<float> logits = engine.forward(step);
    std::vector<SequenceTokens> next;
    std::vector<int64_t> still;
    for (size_t j = 0; j < step.size(); ++j) {
      const int64_t i = active[j];
      const int32_t t = samplers[i].sample(logits.data() + j * cfg.vocab_size, cfg.vocab_size);
      auto& r = results[i];
      r.tokens.push_back(t);
      if (requests[i].stop_at_eos && is_eos(t)) {
        r.finish_reason = "stop";
      } else if (static_cast<int64_t>(r.tokens.size()) >= requests[i].max_tokens) {
        r.finish_reason = "length";
      } else {
        next.push_back({step[j].seq_id, {t}});
        still.push_back(i);
        continue;
      }
      engine.release(step[j].seq_id);
    }
    step = std::move(next);
    active = std::move(still);
  }
  return results;
}

}  // namespace moeflow
