#include "model/engine.h"

#include <chrono>

#include "core/error.h"
#include "core/progress.h"

namespace moeflow {

std::unique_ptr<Engine> Engine::load(const std::filesystem::path& dir, const EngineOptions& opts) {
  return std::unique_ptr<Engine>(new Engine(dir, opts));
}

Engine::Engine(const std::filesystem::path& dir, const EngineOptions& opts)
    : cfg_(load_model_config(dir)),
      ckpt_(Checkpoint::open(dir)),
      type_(parse_compute_type(opts.dtype, ckpt_, cfg_)),
      cache_(cfg_.num_layers, cfg_.num_kv_heads * cfg_.head_dim) {
  Progress progress("loading " + dir.filename().string(), 2 * cfg_.num_layers, opts.progress);
  int64_t done = 0;
  auto step = [&](int64_t, int64_t, const std::string& what) { progress.update(++done, what); };
  router_weights_ = load_router_weights(ckpt_, cfg_, type_, store_, step);
  expert_weights_ = load_expert_weights(ckpt_, cfg_, type_, store_, {}, step);
  progress.finish();
  router_ = std::make_unique<RouterStage>(cfg_, router_weights_);
  experts_ = std::make_unique<ExpertStage>(cfg_, expert_weights_);
}

std::vector<float> Engine::forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                                   StepStats* stats) {
  StepLayout layout;
  std::vector<int32_t> tokens;
  std::vector<int64_t> output_rows;
  for (const SequenceTokens& s : batch) {
    if (s.tokens.empty()) throw Error("sequence " + std::to_string(s.seq_id) + ": no new tokens");
    StepSequence step{s.seq_id, layout.rows(), static_cast<int64_t>(s.tokens.size()),
                      cache_.length(s.seq_id)};
    for (const auto& other : layout.sequences)
      if (other.seq_id == s.seq_id)
        throw Error("sequence " + std::to_string(s.seq_id) + " appears twice in one batch");
    for (int64_t i = 0; i < step.count; ++i) {
      layout.row_seq_ids.push_back(s.seq_id);
      layout.positions.push_back(static_cast<int32_t>(step.first_position + i));
      if (all_positions || i == step.count - 1) output_rows.push_back(step.first_row + i);
    }
    tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
    layout.sequences.push_back(step);
  }
  const int64_t n = layout.rows(), d = cfg_.hidden_size;
  std::vector<float> hidden(n * d), routed;
  router_->embed(tokens.data(), n, hidden.data());
  StepStats local;
  local.rows = n;
  local.weight_bytes = router_->bytes_per_step();
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    TokenBatch tb = router_->attend_and_route(l, layout, hidden.data(), cache_);
    if (!cfg_.layer_is_moe[l]) continue;
    routed.resize(n * d);
    local.weight_bytes += experts_->bytes_touched(tb);
    local.expert_rows += experts_->run(tb, routed.data());
    router_->combine(tb, routed.data(), hidden.data());
  }
  for (const auto& s : layout.sequences) cache_.commit(s.seq_id, s.count);
  std::vector<float> logits(output_rows.size() * cfg_.vocab_size);
  router_->logits(hidden.data(), output_rows, logits.data());
  if (stats) *stats = local;
  return logits;
}

}  // namespace moeflow
