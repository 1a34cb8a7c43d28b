#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMergeThreads = 128;

// exp(m - top) as the weight of a partial result whose running max is m; 0 for an empty one
// (m == -inf), where exp(-inf - -inf) would be NaN.
__device__ __forceinline__ float rescale(float m, float top) {
  return m == -INFINITY ? 0.0f : expf(m - top);
}

// Block (pair = seq * heads + head, split). Lane l of each warp holds dims l + 32 i of the head
// (i < kDimsPerLane, guarded by head_dim). Warp w takes keys lo + w, lo + w + kWarps, ...
// The minimum of 4 blocks per SM (≤ 128 registers) is there for ptxas: without it, nvcc 13.0
// spilled 4 bytes at 48 registers for head_dim 256; with it none (62 registers).
template <int kDimsPerLane>
__global__ void __launch_bounds__(kThreads, 4)
    decode_attention_split_kernel(const float* __restrict__ q,
                                  const float* const* __restrict__ keys,
                                  const float* const* __restrict__ values,
                                  const int32_t* __restrict__ kv_lens, int heads, int kv_heads,
                                  int head_dim, int64_t sliding_window, float scale,
                                  float* __restrict__ out, float2* __restrict__ partial_max_sum,
                                  float* __restrict__ partial_acc) {
  __shared__ float warp_max_s[kWarps], warp_sum_s[kWarps];
  __shared__ float warp_acc[kWarps][32 * kDimsPerLane];
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int64_t pair = blockIdx.x;
  const int64_t seq = pair / heads;
  const int head = static_cast<int>(pair % heads);
  const int kv_head = head / (heads / kv_heads);
  const int split = blockIdx.y, splits = gridDim.y;

  // This split's keys: an equal share of the visible range [begin, len).
  const int64_t len = max(kv_lens[seq], 0);
  const int64_t begin = sliding_window > 0 ? max(len - sliding_window, int64_t{0}) : 0;
  const int64_t chunk = (len - begin + splits - 1) / splits;
  const int64_t lo = begin + split * chunk;
  const int64_t hi = min(len, lo + chunk);

  float qv[kDimsPerLane];
  const float* qh = q + pair * head_dim;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? qh[d] : 0.0f;
  }

  // Online softmax: m the running max of the scores, l the sum of exp(score - m), acc the sum
  // of exp(score - m) * v.
  float m = -INFINITY, l = 0.0f, acc[kDimsPerLane] = {};
  const int64_t kv_ld = static_cast<int64_t>(kv_heads) * head_dim;
  for (int64_t j = lo + warp; j < hi; j += kWarps) {
    const float* kj = keys[seq] + j * kv_ld + static_cast<int64_t>(kv_head) * head_dim;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) s = fmaf(qv[i], kj[d], s);
    }
    s = detail::warp_sum(s) * scale;
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new);  // 0 on the first key (m == -inf)
    const float p = expf(s - m_new);
    l = l * correction + p;
    const float* vj = values[seq] + j * kv_ld + static_cast<int64_t>(kv_head) * head_dim;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * correction + (d < head_dim ? p * vj[d] : 0.0f);
    }
    m = m_new;
  }

  // Merge the warps.
  if (lane == 0) {
    warp_max_s[warp] = m;
    warp_sum_s[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) warp_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float block_max = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) block_max = fmaxf(block_max, warp_max_s[w]);
  float factor[kWarps], total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    factor[w] = rescale(warp_max_s[w], block_max);
    total += warp_sum_s[w] * factor[w];
  }
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float a = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) a += warp_acc[w][d] * factor[w];
    if (splits == 1)
      out[pair * head_dim + d] = total > 0.0f ? a / total : 0.0f;
    else
      partial_acc[(pair * splits + split) * head_dim + d] = a;
  }
  if (splits > 1 && threadIdx.x == 0)
    partial_max_sum[pair * splits + split] = make_float2(block_max, total);
}

// One block per (sequence, head): out = Σ_s acc_s · exp(m_s - M) / Σ_s l_s · exp(m_s - M).
__global__ void __launch_bounds__(kMergeThreads)
    decode_attention_merge_kernel(const float2* __restrict__ partial_max_sum,
                                  const float* __restrict__ partial_acc, int splits, int head_dim,
                                  float* __restrict__ out) {
  __shared__ float factor[kDecodeAttentionMaxSplits];
  const int64_t pair = blockIdx.x;
  const float2* ms = partial_max_sum + pair * splits;
  float top = -INFINITY;
  for (int s = 0; s < splits; ++s) top = fmaxf(top, ms[s].x);
  for (int s = threadIdx.x; s < splits; s += kMergeThreads) factor[s] = rescale(ms[s].x, top);
  __syncthreads();
  float total = 0.0f;
  for (int s = 0; s < splits; ++s) total += ms[s].y * factor[s];
  const float* acc = partial_acc + pair * splits * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kMergeThreads) {
    float a = 0.0f;
    for (int s = 0; s < splits; ++s) a += acc[s * head_dim + d] * factor[s];
    out[pair * head_dim + d] = total > 0.0f ? a / total : 0.0f;
  }
}

template <int kDimsPerLane>
void launch_split(const DecodeAttentionInputs& in, const AttentionShape& shape, int splits,
                  float scale, float* out, float2* partial_max_sum, float* partial_acc,
                  cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(in.seqs * shape.heads), static_cast<unsigned>(splits));
  decode_attention_split_kernel<kDimsPerLane><<<grid, kThreads, 0, stream>>>(
      in.q, in.keys, in.values, in.kv_lens, static_cast<int>(shape.heads),
      static_cast<int>(shape.kv_heads), static_cast<int>(shape.head_dim), shape.sliding_window,
      scale, out, partial_max_sum, partial_acc);
  MOEFLOW_CUDA_CHECK_LAUNCH("decode_attention_split_kernel");
}

}  // namespace

void decode_attention(const DecodeAttentionInputs& in, const AttentionShape& shape, int splits,
                      float* out, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  check_decode_attention_args(in, shape, splits, out, workspace, workspace_bytes);
  if (in.seqs == 0) return;
  const DecodeAttentionWorkspace ws = decode_attention_workspace(in.seqs, shape, splits);
  char* base = static_cast<char*>(workspace);
  float2* partial_max_sum = splits > 1 ? reinterpret_cast<float2*>(base + ws.max_sum) : nullptr;
  float* partial_acc = splits > 1 ? reinterpret_cast<float*>(base + ws.acc) : nullptr;
  // The CPU's scale, computed the same way.
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  if (shape.head_dim <= 64)
    launch_split<2>(in, shape, splits, scale, out, partial_max_sum, partial_acc, stream);
  else if (shape.head_dim <= 128)
    launch_split<4>(in, shape, splits, scale, out, partial_max_sum, partial_acc, stream);
  else
    launch_split<8>(in, shape, splits, scale, out, partial_max_sum, partial_acc, stream);
  if (splits == 1) return;
  decode_attention_merge_kernel<<<static_cast<unsigned>(in.seqs * shape.heads), kMergeThreads, 0,
                                  stream>>>(partial_max_sum, partial_acc, splits,
                                            static_cast<int>(shape.head_dim), out);
  MOEFLOW_CUDA_CHECK_LAUNCH("decode_attention_merge_kernel");
}

}  // namespace moeflow::kernels::cuda
