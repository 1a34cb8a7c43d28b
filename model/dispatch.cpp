#include "model/dispatch.h"

#include <algorithm>

#include "kernels/cpu/ops.h"

namespace moeflow {

std::vector<BatchSlice> split_batch(const TokenBatchPtr& shared, int holders,
                                    const std::function<int(int64_t, int32_t)>& holder_of) {
  const TokenBatch& batch = *shared;
  const int64_t n = batch.size(), k = batch.top_k, d = batch.hidden_size;
  std::vector<int> owner(n * k);
  int only = -1;  // the one holder of every pair, if there is one
  bool single = true;
  for (int64_t s = 0; s < n * k; ++s) {
    owner[s] = holder_of(batch.layer, batch.experts[s]);
    if (batch.experts[s] < 0) continue;
    if (owner[s] < 0 || (only >= 0 && owner[s] != only)) single = false;
    only = owner[s];
  }
  std::vector<BatchSlice> slices;
  if (single && only >= 0) {
    BatchSlice slice{only, shared, std::vector<int64_t>(n)};
    for (int64_t r = 0; r < n; ++r) slice.rows[r] = r;
    slices.push_back(std::move(slice));
    return slices;
  }
  for (int h = 0; h < holders; ++h) {
    BatchSlice slice;
    slice.holder = h;
    auto copy = std::make_shared<TokenBatch>();
    TokenBatch& b = *copy;
    b.layer = batch.layer;
    b.hidden_size = d;
    b.top_k = k;
    for (int64_t r = 0; r < n; ++r) {
      bool any = false;
      for (int64_t j = 0; j < k; ++j) any |= owner[r * k + j] == h;
      if (!any) continue;
      slice.rows.push_back(r);
      b.rows.insert(b.rows.end(), batch.row(r), batch.row(r) + d);
      b.seq_ids.push_back(batch.seq_ids[r]);
      b.positions.push_back(batch.positions[r]);
      for (int64_t j = 0; j < k; ++j) {
        const bool mine = owner[r * k + j] == h;
        b.experts.push_back(mine ? batch.experts[r * k + j] : -1);
        b.weights.push_back(mine ? batch.weights[r * k + j] : 0.0f);
      }
    }
    slice.batch = std::move(copy);
    if (!slice.rows.empty()) slices.push_back(std::move(slice));
  }
  return slices;
}

void add_slice_output(const BatchSlice& slice, const float* output, float* routed) {
  const int64_t d = slice.batch->hidden_size;
  for (size_t i = 0; i < slice.rows.size(); ++i)
    kernels::axpy(1.0f, output + i * d, routed + slice.rows[i] * d, d);
}

}  // namespace moeflow
