#include "model/speculative_generator.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace moeflow {

SpeculativeGeneration generate_speculative(Engine& engine,
                                           const std::vector<GenerationRequest>& requests,
                                           const SpeculativeOptions& options) {
  const ModelConfig& cfg = engine.config();
  SpeculativeDecoder decoder(engine, options);
  const int64_t n = static_cast<int64_t>(requests.size());
  SpeculativeGeneration out;
  out.results.resize(n);
  // Sequence ids of this call: apart from generate()'s and any the caller may hold.
  const uint64_t base = (uint64_t{1} << 62) | (uint64_t{1} << 61);
  std::vector<int64_t> active;
  for (int64_t i = 0; i < n; ++i) {
    const GenerationRequest& r = requests[i];
    if (r.prompt.empty()) throw Error("request " + std::to_string(i) + ": empty prompt");
    if (r.max_tokens < 1) throw Error("max_tokens must be at least 1");
    decoder.add(base + i, r.prompt, r.sampling,
                r.stop_at_eos ? cfg.eos_token_ids : std::vector<int64_t>{});
    active.push_back(i);
  }
  while (!active.empty()) {
    std::vector<SpeculativeRequest> round;
    for (int64_t i : active)
      round.push_back(
          {base + i, requests[i].max_tokens - static_cast<int64_t>(out.results[i].tokens.size())});
    const auto tokens = decoder.step(round);
    std::vector<int64_t> still;
    for (size_t j = 0; j < active.size(); ++j) {
      const int64_t i = active[j];
      GenerationResult& r = out.results[i];
      r.tokens.insert(r.tokens.end(), tokens[j].begin(), tokens[j].end());
      const bool eos =
          requests[i].stop_at_eos && std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(),
                                               r.tokens.back()) != cfg.eos_token_ids.end();
      if (eos) {
        r.finish_reason = "stop";
      } else if (static_cast<int64_t>(r.tokens.size()) >= requests[i].max_tokens) {
        r.finish_reason = "length";
      } else {
        still.push_back(i);
        continue;
      }
      decoder.finish(base + i);
    }
    active = std::move(still);
  }
  out.stats = decoder.stats();
  return out;
}

}  // namespace moeflow
