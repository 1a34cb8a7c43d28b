#pragma once
// Host-side part of the router stage's GPU kernels (rms_norm.h, rotary.h, decode_attention.h,
// gate_matmul.h): their argument types, the checks each launcher runs before touching the device,
// and decode attention's split plan and workspace layout. Compiled in every build (nvcc or not),
// so the refusals are tested without a GPU. Checks throw std::invalid_argument naming the
// function, the argument and the values.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"

namespace moeflow::kernels::cuda {

// rms_norm: x, weight, out fp32 (weight as the CPU stores it, [hidden] fp32).
void check_rms_norm_args(const float* x, const float* weight, int64_t rows, int64_t hidden,
                         float eps, const float* out);

// One tensor the rotary embedding rotates in place: rows of `heads * head_dim` floats, row stride
// `ld` (elements). heads == 0 skips it (data may then be null).
struct RotaryTensor {
  float* data = nullptr;
  int64_t ld = 0;
  int64_t heads = 0;
};

// The CPU's limit (model_config.cpp refuses more; ops.cpp keeps cos/sin of 512 pairs).
inline constexpr int64_t kRotaryMaxHeadDim = 1024;

void check_rotary_args(const RotaryTensor& q, const RotaryTensor& k, int64_t rows, int64_t head_dim,
                       const int32_t* positions, const float* inv_freq);

// gate_matmul's grid has one block per 4 experts in gridDim.y (at most 65535).
inline constexpr int64_t kGateMatmulMaxExperts = 65535 * 4;

// gate_matmul: w is a kernels::Matrix whose data is a device pointer ([experts, hidden], fp32 or
// bf16); x [rows, hidden] and logits [rows, experts] fp32.
void check_gate_matmul_args(const float* x, int64_t rows, const Matrix& w, const float* logits);

// Decode attention: one query row per sequence against that sequence's contiguous cache (the
// layout of model/kv_cache.h). All device pointers.
struct DecodeAttentionInputs {
  const float* q = nullptr;              // [seqs, heads * head_dim], rotated
  const float* const* keys = nullptr;    // [seqs] pointers, each [kv_lens[s], kv_heads * head_dim]
  const float* const* values = nullptr;  // [seqs] pointers, same layout as keys
  const int32_t* kv_lens = nullptr;      // [seqs]: rows cached, this step's included
  int64_t seqs = 0;
};

// One warp holds a head in registers, up to 8 values per lane.
inline constexpr int64_t kDecodeAttentionMaxHeadDim = 256;
// Key ranges per (sequence, head); more would not shorten the second pass's merge.
inline constexpr int kDecodeAttentionMaxSplits = 64;
// A split is worth its partial result only with at least this many keys.
inline constexpr int64_t kDecodeAttentionKeysPerSplitMin = 256;
// Enough blocks for two per SM on a 132-SM Hopper GPU; beyond it splitting buys nothing.
inline constexpr int64_t kDecodeAttentionTargetBlocks = 264;

// Splits of each (sequence, head)'s keys: 1 for short caches or when sequences × heads already
// fill the GPU, else enough to reach kDecodeAttentionTargetBlocks with at least
// kDecodeAttentionKeysPerSplitMin keys per split. kv_len_max is the longest cache of the step
// (a hint only: every sequence splits its own length, so results never depend on it).
int decode_attention_splits(int64_t seqs, int64_t heads, int64_t kv_len_max);

// Partial results of the splits: float2 (running max, sum of exponentials) per (seq, head,
// split), then fp32 [seqs, heads, splits, head_dim] unnormalised outputs. Offsets 256-byte
// aligned; bytes == 0 when splits == 1 (the first pass then writes the output itself).
struct DecodeAttentionWorkspace {
  size_t max_sum = 0;
  size_t acc = 0;
  size_t bytes = 0;
};
DecodeAttentionWorkspace decode_attention_workspace(int64_t seqs, const AttentionShape& shape,
                                                    int splits);

void check_decode_attention_args(const DecodeAttentionInputs& in, const AttentionShape& shape,
                                 int splits, const float* out, const void* workspace,
                                 size_t workspace_bytes);

}  // namespace moeflow::kernels::cuda
