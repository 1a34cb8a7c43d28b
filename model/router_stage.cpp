#include "model/router_stage.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/ops.h"
#include "model/moe_routing.h"
#include "model/swiglu.h"

namespace moeflow {
namespace {

kernels::Matrix f32_matrix(const std::vector<float>& data, int64_t rows, int64_t cols) {
  return {kernels::WeightType::f32, data.data(), rows, cols};
}

void project(const float* x, int64_t n, const kernels::Matrix& w, const std::vector<float>& bias,
             std::vector<float>& out) {
  out.resize(n * w.rows);
  kernels::matmul(x, n, w, out.data());
  if (!bias.empty()) kernels::add_bias(out.data(), bias.data(), n, w.rows);
}

}  // namespace

RouterStage::RouterStage(const ModelConfig& cfg, const RouterWeights& weights)
    : cfg_(cfg), w_(weights), inv_freq_(cfg.head_dim / 2) {
  kernels::rope_inv_freq(cfg.head_dim, cfg.rope_theta, inv_freq_.data());
}

void RouterStage::embed(const int32_t* tokens, int64_t n, float* hidden) const {
  const int64_t d = cfg_.hidden_size;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || t >= cfg_.vocab_size)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary (size " +
                  std::to_string(cfg_.vocab_size) + ")");
    if (w_.embed.type == kernels::WeightType::f32) {
      const float* src = static_cast<const float*>(w_.embed.data) + t * d;
      std::copy(src, src + d, hidden + i * d);
    } else {
      kernels::bf16_to_f32(static_cast<const uint16_t*>(w_.embed.data) + t * d, hidden + i * d, d);
    }
  }
}

void RouterStage::attention(int64_t layer, const StepLayout& layout, const float* normed,
                            KvCache& cache, float* out) {
  const auto& a = w_.layers[layer].attention;
  const int64_t n = layout.rows();
  const int64_t q_dim = cfg_.num_heads * cfg_.head_dim, kv_dim = cfg_.num_kv_heads * cfg_.head_dim;
  project(normed, n, a.q, a.q_bias, q_);
  project(normed, n, a.k, a.k_bias, k_);
  project(normed, n, a.v, a.v_bias, v_);
  if (cfg_.qk_norm) {
    kernels::rms_norm(q_.data(), a.q_norm.data(), n, q_dim, cfg_.rms_norm_eps, q_.data());
    kernels::rms_norm(k_.data(), a.k_norm.data(), n, kv_dim, cfg_.rms_norm_eps, k_.data());
  }
  if (cfg_.clip_qkv > 0) {
    kernels::clamp(q_.data(), n * q_dim, cfg_.clip_qkv);
    kernels::clamp(k_.data(), n * kv_dim, cfg_.clip_qkv);
    kernels::clamp(v_.data(), n * kv_dim, cfg_.clip_qkv);
  }
  kernels::rope_rotate_half(q_.data(), q_dim, n, cfg_.num_heads, cfg_.head_dim,
                            layout.positions.data(), inv_freq_.data());
  kernels::rope_rotate_half(k_.data(), kv_dim, n, cfg_.num_kv_heads, cfg_.head_dim,
                            layout.positions.data(), inv_freq_.data());
  const kernels::AttentionShape shape{cfg_.num_heads, cfg_.num_kv_heads, cfg_.head_dim,
                                      cfg_.sliding_window};
  for (const StepSequence& s : layout.sequences) {
    const int64_t kv_len = cache.append(s.seq_id, layer, k_.data() + s.first_row * kv_dim,
                                        v_.data() + s.first_row * kv_dim, s.count);
    kernels::attention(q_.data() + s.first_row * q_dim, s.count, s.first_position,
                       cache.keys(s.seq_id, layer), cache.values(s.seq_id, layer), kv_len, shape,
                       out + s.first_row * q_dim);
  }
}

TokenBatch RouterStage::attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                                         KvCache& cache, const ExpertBudget& budget) {
  const LayerWeights& lw = w_.layers[layer];
  const int64_t n = layout.rows(), d = cfg_.hidden_size;
  normed_.resize(n * d);
  kernels::rms_norm(hidden, lw.input_norm.data(), n, d, cfg_.rms_norm_eps, normed_.data());
  attn_.resize(n * cfg_.num_heads * cfg_.head_dim);
  attention(layer, layout, normed_.data(), cache, attn_.data());
  proj_.resize(n * d);
  kernels::matmul(attn_.data(), n, lw.attention.o, proj_.data());
  for (int64_t i = 0; i < n * d; ++i) hidden[i] += proj_[i];

  TokenBatch batch;
  batch.layer = layer;
  batch.hidden_size = d;
  batch.rows.resize(n * d);
  kernels::rms_norm(hidden, lw.post_attention_norm.data(), n, d, cfg_.rms_norm_eps,
                    batch.rows.data());
  if (!cfg_.layer_is_moe[layer]) {
    swiglu(lw.dense_mlp, batch.rows.data(), n, proj_.data(), scratch_);
    for (int64_t i = 0; i < n * d; ++i) hidden[i] += proj_[i];
    batch.rows.clear();
    return batch;
  }
  const int64_t k = budget_top_k(budget, cfg_, layer);
  const std::vector<uint8_t> allowed = resident_mask(budget, cfg_, layer);
  batch.top_k = k;
  batch.seq_ids = layout.row_seq_ids;
  batch.positions = layout.positions;
  gate_logits_.resize(n * cfg_.num_experts);
  kernels::matmul(batch.rows.data(), n, f32_matrix(lw.router_gate, cfg_.num_experts, d),
                  gate_logits_.data());
  batch.experts.resize(n * k);
  batch.weights.resize(n * k);
  route_top_k(gate_logits_.data(), n, cfg_.num_experts, k, cfg_.norm_topk_prob,
              batch.experts.data(), batch.weights.data(),
              allowed.empty() ? nullptr : allowed.data());
  return batch;
}

void RouterStage::combine(const TokenBatch& batch, const float* routed, float* hidden) {
  const LayerWeights& lw = w_.layers[batch.layer];
  const int64_t n = batch.size(), d = cfg_.hidden_size;
  for (int64_t i = 0; i < n * d; ++i) hidden[i] += routed[i];
  if (lw.shared_expert.empty()) return;
  shared_.resize(n * d);
  swiglu(lw.shared_expert, batch.rows.data(), n, shared_.data(), scratch_);
  for (int64_t r = 0; r < n; ++r) {
    float scale = 1.0f;
    if (!lw.shared_expert_gate.empty()) {
      float g = 0.0f;
      for (int64_t i = 0; i < d; ++i) g += batch.row(r)[i] * lw.shared_expert_gate[i];
      scale = kernels::sigmoid(g);
    }
    kernels::axpy(scale, shared_.data() + r * d, hidden + r * d, d);
  }
}

void RouterStage::logits(const float* hidden, const std::vector<int64_t>& rows, float* out) {
  const int64_t d = cfg_.hidden_size, n = static_cast<int64_t>(rows.size());
  normed_.resize(n * d);
  for (int64_t i = 0; i < n; ++i)
    kernels::rms_norm(hidden + rows[i] * d, w_.final_norm.data(), 1, d, cfg_.rms_norm_eps,
                      normed_.data() + i * d);
  kernels::matmul(normed_.data(), n, w_.lm_head, out);
}

int64_t RouterStage::bytes_per_step() const {
  int64_t bytes = w_.lm_head.bytes();
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    const LayerWeights& lw = w_.layers[l];
    const auto& a = lw.attention;
    bytes += a.q.bytes() + a.k.bytes() + a.v.bytes() + a.o.bytes();
    bytes += static_cast<int64_t>(lw.router_gate.size() * sizeof(float));
    bytes += lw.shared_expert.bytes() + lw.dense_mlp.bytes();
  }
  return bytes;
}

}  // namespace moeflow
