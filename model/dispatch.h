#pragma once
// Dispatch and combine of the MoE pipeline (route -> dispatch -> experts -> combine): split a
// layer's TokenBatch into one slice per expert holder, each with only the rows that have a
// (row, expert) pair assigned to it, and add the slices' outputs back in row order.
#include <cstdint>
#include <functional>
#include <vector>

#include "model/token_batch.h"

namespace moeflow {

struct BatchSlice {
  int holder = 0;             // index of the shard this slice goes to
  TokenBatchPtr batch;        // its rows; pairs assigned elsewhere have expert id -1
  std::vector<int64_t> rows;  // row of the full batch for each row of the slice
};

// `holder_of(layer, expert)` names the holder of each pair (a value in [0, holders), or -1 for
// none). Holders that get no pair get no slice. When one holder gets every pair (pairs whose
// expert id is already -1 aside) its slice is `batch` itself, shared rather than copied.
std::vector<BatchSlice> split_batch(const TokenBatchPtr& batch, int holders,
                                    const std::function<int(int64_t, int32_t)>& holder_of);

// routed[slice.rows[i]] += output[i] for each row of the slice; routed is [full rows, hidden].
void add_slice_output(const BatchSlice& slice, const float* output, float* routed);

}  // namespace moeflow
