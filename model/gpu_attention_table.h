#pragma once
// Causal attention for prefill and decode alike through the decode-attention kernel
// (kernels/cuda/decode_attention.h), which takes one query row per "sequence" with its own key
// and value pointers and length: row r of a sequence whose new tokens start at first_position p
// becomes a query of kv_len p + r + 1 over that sequence's cache, so it sees exactly the keys
// the CPU's causal attention (kernels/cpu/attention.h) shows it, sliding window included. This
// file builds that per-row table on the host from a StepLayout. Host-only, built everywhere.
#include <cstdint>
#include <vector>

#include "model/router_stage.h"

namespace moeflow {

// One sequence's cache after this step's append (device pointers, not dereferenced here).
struct SequenceCache {
  const float* keys = nullptr;
  const float* values = nullptr;
  int64_t kv_len = 0;  // rows held, this step's included
};

// Per layout row, in row order: the pointers and length decode attention reads.
struct AttentionTable {
  std::vector<const float*> keys, values;
  std::vector<int32_t> kv_lens;
  int64_t kv_len_max = 0;
  int64_t rows() const { return static_cast<int64_t>(kv_lens.size()); }
};

// Throws moeflow::Error naming the sequence/row unless the layout is well formed: positions and
// row_seq_ids one per row, every row in exactly one sequence, counts and first positions not
// negative, positions within int32.
void check_step_layout(const StepLayout& layout);

// `caches[i]` belongs to layout.sequences[i]. Checks the layout (check_step_layout), and that
// every sequence's cache holds exactly first_position + count rows (what the CPU's attention
// requires) with non-null pointers when it holds any; throws moeflow::Error naming the sequence.
AttentionTable build_attention_table(const StepLayout& layout,
                                     const std::vector<SequenceCache>& caches);

}  // namespace moeflow
