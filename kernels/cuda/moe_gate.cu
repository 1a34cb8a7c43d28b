#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/moe_gate.h"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kPerLane = kGateMaxExperts / 32;

// Whether candidate (a_ok, a_p, a_e) ranks before (b_ok, b_p, b_e): allowed first, then the larger
// probability, then the lower id. Ids < 0 mark "no candidate" and rank last.
__device__ bool ranks_before(bool a_ok, float a_p, int a_e, bool b_ok, float b_p, int b_e) {
  if (b_e < 0) return a_e >= 0;
  if (a_e < 0) return false;
  if (a_ok != b_ok) return a_ok;
  return a_p > b_p || (a_p == b_p && a_e < b_e);
}

__global__ void route_top_k_kernel(const float* __restrict__ logits, int64_t n, int num_experts,
                                   int k, bool normalize, const uint8_t* __restrict__ allowed,
                                   int32_t* __restrict__ experts, float* __restrict__ weights) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= n) return;  // whole warps leave together
  const float* l = logits + row * num_experts;

  // Expert e = lane + 32 * j lives in lane `lane`, slot j.
  float p[kPerLane];
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int e = lane + 32 * j;
    p[j] = e < num_experts ? l[e] : -INFINITY;
    m = fmaxf(m, p[j]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int e = lane + 32 * j;
    p[j] = e < num_experts ? expf(p[j] - m) : 0.0f;
    s += p[j];
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  const float inv = 1.0f / s;
  unsigned taken = 0;  // bit j: this lane's slot j is chosen (or not an expert)
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    p[j] *= inv;
    if (lane + 32 * j >= num_experts) taken |= 1u << j;
  }

  int my_e = -1;  // lane c keeps choice c
  float my_p = 0.0f, total = 0.0f;
  for (int c = 0; c < k; ++c) {
    // This lane's best remaining candidate.
    bool best_ok = false;
    float best_p = 0.0f;
    int best_e = -1;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int e = lane + 32 * j;
      if (taken & (1u << j)) continue;
      const bool ok = allowed == nullptr || allowed[e] != 0;
      if (ranks_before(ok, p[j], e, best_ok, best_p, best_e)) {
        best_ok = ok;
        best_p = p[j];
        best_e = e;
      }
    }
    // The warp's best.
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const bool ok = __shfl_xor_sync(0xffffffffu, static_cast<int>(best_ok), o) != 0;
      const float bp = __shfl_xor_sync(0xffffffffu, best_p, o);
      const int be = __shfl_xor_sync(0xffffffffu, best_e, o);
      if (ranks_before(ok, bp, be, best_ok, best_p, best_e)) {
        best_ok = ok;
        best_p = bp;
        best_e = be;
      }
    }
    // Every lane now holds the same winner; its owner marks it taken.
    if (best_e >= 0 && (best_e & 31) == lane) taken |= 1u << (best_e / 32);
    if (lane == c) {
      my_e = best_e;
      my_p = best_p;
    }
    total += best_p;  // in choice order, as the CPU sums
  }
  if (lane < k) {
    experts[row * k + lane] = my_e;
    weights[row * k + lane] = normalize ? my_p / total : my_p;
  }
}

}  // namespace

void route_top_k(const float* logits, int64_t n, int num_experts, int k, bool normalize,
                 int32_t* experts, float* weights, cudaStream_t stream, const uint8_t* allowed) {
  if (num_experts < 1 || num_experts > kGateMaxExperts)
    throw std::invalid_argument("route_top_k: " + std::to_string(num_experts) + " experts (1 to " +
                                std::to_string(kGateMaxExperts) + " supported)");
  if (k < 1 || k > kGateMaxTopK || k > num_experts)
    throw std::invalid_argument("route_top_k: top_k " + std::to_string(k) + " with " +
                                std::to_string(num_experts) + " experts");
  if (n <= 0) return;
  const int64_t blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  route_top_k_kernel<<<static_cast<unsigned>(blocks), 32 * kWarpsPerBlock, 0, stream>>>(
      logits, n, num_experts, k, normalize, allowed, experts, weights);
  MOEFLOW_CUDA_CHECK_LAUNCH("route_top_k_kernel");
}

}  // namespace moeflow::kernels::cuda
