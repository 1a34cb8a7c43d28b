#include "model/moe_routing.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/cpu/ops.h"

namespace moeflow {

void route_top_k(const float* logits, int64_t n, int64_t num_experts, int64_t k, bool normalize,
                 int32_t* experts, float* weights, const uint8_t* allowed) {
  std::vector<float> probs(num_experts);
  std::vector<int32_t> order(num_experts);
  for (int64_t r = 0; r < n; ++r) {
    std::copy(logits + r * num_experts, logits + (r + 1) * num_experts, probs.begin());
    kernels::softmax_rows(probs.data(), 1, num_experts);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      // Allowed experts rank before the others, so a token whose favourites are not allowed
      // takes the best allowed ones.
      if (allowed && (allowed[a] != 0) != (allowed[b] != 0)) return allowed[a] != 0;
      return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
    });
    float total = 0.0f;
    for (int64_t j = 0; j < k; ++j) total += probs[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      experts[r * k + j] = order[j];
      weights[r * k + j] = normalize ? probs[order[j]] / total : probs[order[j]];
    }
  }
}

}  // namespace moeflow
