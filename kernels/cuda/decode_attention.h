#pragma once
// Decode attention on the GPU: one query row per sequence (the step's new token, at position
// kv_lens[s] - 1) against that sequence's cached keys and values, the rule of
// kernels/cpu/attention.h for n == 1: grouped-query heads (query head h reads kv head
// h / (heads / kv_heads)), scale 1/sqrt(head_dim), keys visible from max(0, len - sliding_window)
// (0: all), softmax in fp32 with the maximum subtracted. The cache is model/kv_cache.h's layout:
// per sequence contiguous [len, kv_heads * head_dim] fp32 keys and values.
//
// Flash-decoding: each (sequence, head) splits its visible keys into `splits` equal ranges, one
// block each (4 warps, one key per warp at a time, an online softmax per warp, merged in shared
// memory). With one split the block writes the output; with more, each writes (max, sum,
// unnormalised output) to the workspace and a second kernel merges the splits per (sequence, head).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/router_kernel_args.h"

namespace moeflow::kernels::cuda {

// out: [seqs, heads * head_dim] fp32, overwritten (a sequence with no visible keys gets zeros).
// splits: from decode_attention_splits (1 to kDecodeAttentionMaxSplits; any value gives the same
// result up to rounding). workspace: decode_attention_workspace(seqs, shape, splits).bytes bytes,
// 256-byte aligned (none needed for one split). All device pointers. Throws
// std::invalid_argument on bad shapes before any device call (check_decode_attention_args),
// std::runtime_error when a launch fails. Asynchronous on `stream`.
void decode_attention(const DecodeAttentionInputs& in, const AttentionShape& shape, int splits,
                      float* out, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
