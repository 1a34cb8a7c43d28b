#include "kernels/cuda/router_kernel_args.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace moeflow::kernels::cuda {
namespace {

constexpr int64_t kGridMax = std::numeric_limits<int32_t>::max();  // gridDim.x

[[noreturn]] void refuse(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string(function) + ": " + what);
}

std::string str(int64_t v) {
  return std::to_string(v);
}

void require_pointer(const char* function, const char* name, const void* p) {
  if (p == nullptr) refuse(function, std::string(name) + " is null");
}

size_t align256(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

}  // namespace

void check_rms_norm_args(const float* x, const float* weight, int64_t rows, int64_t hidden,
                         float eps, const float* out) {
  constexpr const char* f = "rms_norm";
  if (rows < 0 || rows > kGridMax) refuse(f, "rows " + str(rows) + " (0 to 2^31-1 supported)");
  if (hidden < 1 || hidden > kGridMax) refuse(f, "hidden " + str(hidden) + " must be positive");
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    refuse(f, "eps " + std::to_string(eps) + " must be finite and non-negative");
  if (rows == 0) return;
  require_pointer(f, "x", x);
  require_pointer(f, "weight", weight);
  require_pointer(f, "out", out);
}

void check_rotary_args(const RotaryTensor& q, const RotaryTensor& k, int64_t rows, int64_t head_dim,
                       const int32_t* positions, const float* inv_freq) {
  constexpr const char* f = "rope_rotate_half";
  if (rows < 0 || rows > kGridMax) refuse(f, "rows " + str(rows) + " (0 to 2^31-1 supported)");
  if (head_dim < 2 || head_dim % 2 != 0 || head_dim > kRotaryMaxHeadDim)
    refuse(f, "head_dim " + str(head_dim) + " must be even, 2 to " + str(kRotaryMaxHeadDim));
  for (const auto& [name, t] : {std::pair{"q", q}, std::pair{"k", k}}) {
    if (t.heads < 0 || t.heads > kGridMax / head_dim)
      refuse(f, std::string(name) + " heads " + str(t.heads) + " out of range");
    if (t.heads == 0 || rows == 0) continue;
    require_pointer(f, name, t.data);
    if (t.ld < t.heads * head_dim)
      refuse(f, std::string(name) + " row stride " + str(t.ld) + " is less than heads " +
                    str(t.heads) + " x head_dim " + str(head_dim));
  }
  if (rows == 0 || q.heads + k.heads == 0) return;
  require_pointer(f, "positions", positions);
  require_pointer(f, "inv_freq", inv_freq);
}

void check_gate_matmul_args(const float* x, int64_t rows, const Matrix& w, const float* logits) {
  constexpr const char* f = "gate_matmul";
  if (rows < 0 || rows > kGridMax) refuse(f, "rows " + str(rows) + " (0 to 2^31-1 supported)");
  if (w.rows < 1 || w.rows > kGateMatmulMaxExperts)
    refuse(f, "experts (weight rows) " + str(w.rows) + " (1 to " + str(kGateMatmulMaxExperts) +
                  " supported)");
  if (w.cols < 1 || w.cols > kGridMax)
    refuse(f, "hidden (weight cols) " + str(w.cols) + " must be positive");
  if (w.type != WeightType::f32 && w.type != WeightType::bf16)
    refuse(f, "weight type " + str(static_cast<int>(w.type)) + " (fp32 or bf16 supported)");
  if (rows == 0) return;
  require_pointer(f, "x", x);
  require_pointer(f, "weight", w.data);
  require_pointer(f, "logits", logits);
}

int decode_attention_splits(int64_t seqs, int64_t heads, int64_t kv_len_max) {
  const int64_t blocks = std::max<int64_t>(1, seqs * heads);
  const int64_t by_length =
      std::max<int64_t>(1, kv_len_max / kDecodeAttentionKeysPerSplitMin);  // full splits only
  const int64_t by_occupancy = (kDecodeAttentionTargetBlocks + blocks - 1) / blocks;
  return static_cast<int>(
      std::clamp<int64_t>(std::min(by_length, by_occupancy), 1, kDecodeAttentionMaxSplits));
}

DecodeAttentionWorkspace decode_attention_workspace(int64_t seqs, const AttentionShape& shape,
                                                    int splits) {
  DecodeAttentionWorkspace ws;
  if (splits <= 1 || seqs <= 0) return ws;
  const size_t partials = static_cast<size_t>(seqs) * shape.heads * splits;
  ws.max_sum = 0;
  ws.acc = align256(partials * 2 * sizeof(float));
  ws.bytes = ws.acc + align256(partials * shape.head_dim * sizeof(float));
  return ws;
}

void check_decode_attention_args(const DecodeAttentionInputs& in, const AttentionShape& shape,
                                 int splits, const float* out, const void* workspace,
                                 size_t workspace_bytes) {
  constexpr const char* f = "decode_attention";
  if (shape.heads < 1 || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0)
    refuse(f, "heads " + str(shape.heads) + " must be a positive multiple of kv_heads " +
                  str(shape.kv_heads));
  if (shape.head_dim < 1 || shape.head_dim > kDecodeAttentionMaxHeadDim)
    refuse(f, "head_dim " + str(shape.head_dim) + " (1 to " + str(kDecodeAttentionMaxHeadDim) +
                  " supported)");
  if (shape.sliding_window < 0)
    refuse(f, "sliding_window " + str(shape.sliding_window) + " is negative");
  if (splits < 1 || splits > kDecodeAttentionMaxSplits)
    refuse(f, "splits " + str(splits) + " (1 to " + str(kDecodeAttentionMaxSplits) + ")");
  if (in.seqs < 0 || in.seqs > kGridMax / shape.heads)
    refuse(f, str(in.seqs) + " sequences of " + str(shape.heads) + " heads (at most 2^31-1 pairs)");
  if (in.seqs == 0) return;
  require_pointer(f, "q", in.q);
  require_pointer(f, "keys", in.keys);
  require_pointer(f, "values", in.values);
  require_pointer(f, "kv_lens", in.kv_lens);
  require_pointer(f, "out", out);
  const DecodeAttentionWorkspace ws = decode_attention_workspace(in.seqs, shape, splits);
  if (ws.bytes == 0) return;
  require_pointer(f, "workspace", workspace);
  if (workspace_bytes < ws.bytes)
    refuse(f, "workspace of " + std::to_string(workspace_bytes) + " bytes, " +
                  std::to_string(ws.bytes) + " needed for " + str(in.seqs) + " sequences, " +
                  str(shape.heads) + " heads, " + str(splits) + " splits");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    refuse(f, "workspace not 256-byte aligned");
}

}  // namespace moeflow::kernels::cuda
