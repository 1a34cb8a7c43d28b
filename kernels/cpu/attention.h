#pragma once
// Causal grouped-query attention of new tokens against one sequence's KV cache.
#include <cstdint>

namespace moeflow::kernels {

struct AttentionShape {
  int64_t heads = 0;     // query heads
  int64_t kv_heads = 0;  // key/value heads; heads % kv_heads == 0
  int64_t head_dim = 0;
  int64_t sliding_window =
      0;  // 0: unlimited; else key j is visible from query at p iff p - j < window
};

// q: [n, heads * head_dim] (rotated), the queries of the sequence's positions
//    first_position .. first_position + n - 1;
// k, v: [kv_len, kv_heads * head_dim], the cache including these n tokens
//    (kv_len == first_position + n);
// out: [n, heads * head_dim]. Scale is 1/sqrt(head_dim). Parallel over (token, head).
void attention(const float* q, int64_t n, int64_t first_position, const float* k, const float* v,
               int64_t kv_len, const AttentionShape& shape, float* out);

}  // namespace moeflow::kernels
