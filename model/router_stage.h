#pragma once
// The router stage: everything of a layer but the routed experts. Per layer it runs the input
// norm, attention over the KV cache and the residual, then the post-attention norm and either the
// dense MLP (dense layers) or the gate and top-k, producing the TokenBatch for the expert stage;
// `combine` adds the experts' weighted outputs and the shared expert back into the residual.
#include <cstdint>
#include <vector>

#include "model/expert_budget.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/token_batch.h"
#include "model/weights.h"

namespace moeflow {

// How the rows of one forward pass map to sequences: rows [first_row, first_row + count) are new
// tokens of `seq_id` at positions first_position, first_position + 1, ...
struct StepSequence {
  uint64_t seq_id = 0;
  int64_t first_row = 0;
  int64_t count = 0;
  int64_t first_position = 0;
};

struct StepLayout {
  std::vector<StepSequence> sequences;
  std::vector<uint64_t> row_seq_ids;  // per row
  std::vector<int32_t> positions;     // per row
  int64_t rows() const { return static_cast<int64_t>(positions.size()); }
};

class RouterStage {
 public:
  RouterStage(const ModelConfig& cfg, const RouterWeights& weights);

  // hidden[n, d] = embedding rows of the tokens (ids must be < vocab_size).
  void embed(const int32_t* tokens, int64_t n, float* hidden) const;

  // Attention (appending this step's keys and values to `cache`) and residual for `layer`.
  // A dense layer also runs its MLP and residual and returns an empty batch; an MoE layer
  // returns the rows to send to the experts, routed within `budget` (default: the model's own
  // top-k over every expert; the caller validates a non-default budget, see expert_budget.h).
  TokenBatch attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                              KvCache& cache, const ExpertBudget& budget = {});

  // hidden += routed (the expert stages' summed output for batch's rows) + the shared expert.
  void combine(const TokenBatch& batch, const float* routed, float* hidden);

  // logits[i, vocab] for the given rows of hidden after the final norm.
  void logits(const float* hidden, const std::vector<int64_t>& rows, float* out);

  // Bytes of non-expert weights one forward pass reads (for bandwidth accounting).
  int64_t bytes_per_step() const;

 private:
  void attention(int64_t layer, const StepLayout& layout, const float* normed, KvCache& cache,
                 float* out);

  const ModelConfig& cfg_;
  const RouterWeights& w_;
  std::vector<float> inv_freq_;
  std::vector<float> normed_, q_, k_, v_, attn_, proj_, gate_logits_, scratch_, shared_;
};

}  // namespace moeflow
