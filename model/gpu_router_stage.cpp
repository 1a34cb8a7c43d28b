#include "model/gpu_router_stage.h"

#include <string>

#include "core/error.h"
#include "model/gpu_device.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/gate_matmul.h"
#include "kernels/cuda/moe_gate.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "model/gpu_attention_table.h"
#include "model/gpu_router_stage_impl.h"
#endif

namespace moeflow {

#if MOEFLOW_HAVE_CUDA

void GpuRouterStage::Impl::check_tokens(const int32_t* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (size " +
                  std::to_string(cfg.vocab_size) + ")");
}

void GpuRouterStage::Impl::check_layer(int64_t layer, const StepLayout& layout,
                                       const GpuKvCache& cache) const {
  if (layer < 0 || layer >= cfg.num_layers)
    throw Error(who + ": layer " + std::to_string(layer) + " of " + std::to_string(cfg.num_layers));
  if (cache.device() != device || cache.num_layers() != cfg.num_layers ||
      cache.kv_dim() != cfg.num_kv_heads * cfg.head_dim)
    throw Error(who + ": a kv cache on cuda:" + std::to_string(cache.device()) + " with " +
                std::to_string(cache.num_layers()) + " layers of width " +
                std::to_string(cache.kv_dim()) + " (the model has " +
                std::to_string(cfg.num_layers) + " of width " +
                std::to_string(cfg.num_kv_heads * cfg.head_dim) + ")");
  check_step_layout(layout);
}

void GpuRouterStage::Impl::embed(const int32_t* tokens, int64_t n, float* hidden) {
  ok(cudaSetDevice(device), "cudaSetDevice");
  const size_t bytes = static_cast<size_t>(n) * sizeof(int32_t);
  unsigned char* staged = staging->fill(token_slot(), bytes, "token ids");
  std::memcpy(staged, tokens, bytes);
  int32_t* t = grow<int32_t>(this->tokens, n, "tokens");
  upload(t, staged, bytes, "copy tokens in");
  staging->queued(token_slot(), stream, "copy tokens in");
  kc::embed_rows_bf16(w->embed.data, w->embed.rows, cfg.hidden_size, t, n, hidden, stream);
}

// Causal attention of the layout's rows (x: normed, [n, d], device) into out [n, q_dim]. The
// positions are already uploaded (in.positions); the table goes from `staged` to `uploaded`.
void GpuRouterStage::Impl::attention(int64_t layer, const StepLayout& layout, const float* x,
                                     GpuKvCache& cache, const LayerInputs& in,
                                     unsigned char* staged, unsigned char* uploaded, float* out) {
  const DeviceLayer& lw = w->layers[layer];
  const int64_t n = layout.rows(), d = cfg.hidden_size;
  const int64_t q_dim = cfg.num_heads * cfg.head_dim, kv_dim = cfg.num_kv_heads * cfg.head_dim;
  uint16_t* xb = grow<uint16_t>(a_bf16, n * std::max(d, q_dim), "bf16 rows");
  kc::f32_to_bf16(x, n * d, xb, stream);  // once for the three projections
  float* qp = grow<float>(q, n * q_dim, "q");
  float* kp = grow<float>(k, n * kv_dim, "k");
  float* vp = grow<float>(v, n * kv_dim, "v");
  gemm(xb, lw.q, n, qp, "q projection");
  gemm(xb, lw.k, n, kp, "k projection");
  gemm(xb, lw.v, n, vp, "v projection");
  if (lw.q_bias) kc::add_bias_rows(qp, lw.q_bias, n, q_dim, stream);
  if (lw.k_bias) kc::add_bias_rows(kp, lw.k_bias, n, kv_dim, stream);
  if (lw.v_bias) kc::add_bias_rows(vp, lw.v_bias, n, kv_dim, stream);
  if (cfg.qk_norm) {  // over the whole projection, as OLMoE and the CPU do
    kc::rms_norm(qp, lw.q_norm, n, q_dim, cfg.rms_norm_eps, qp, stream);
    kc::rms_norm(kp, lw.k_norm, n, kv_dim, cfg.rms_norm_eps, kp, stream);
  }
  if (cfg.clip_qkv > 0) {
    kc::clamp_values(qp, n * q_dim, cfg.clip_qkv, stream);
    kc::clamp_values(kp, n * kv_dim, cfg.clip_qkv, stream);
    kc::clamp_values(vp, n * kv_dim, cfg.clip_qkv, stream);
  }
  kc::rope_rotate_half({qp, q_dim, cfg.num_heads}, {kp, kv_dim, cfg.num_kv_heads}, n, cfg.head_dim,
                       reinterpret_cast<const int32_t*>(uploaded + in.positions), w->rope_inv_freq,
                       stream);

  std::vector<int64_t> held;  // the layer's rows per sequence after the append
  held.reserve(layout.sequences.size());
  for (const StepSequence& s : layout.sequences)
    held.push_back(cache.append(s.seq_id, layer, kp + s.first_row * kv_dim,
                                vp + s.first_row * kv_dim, s.count, stream));
  // Pointers only after every append: a growing buffer moves.
  std::vector<SequenceCache> caches;
  caches.reserve(layout.sequences.size());
  for (size_t i = 0; i < layout.sequences.size(); ++i) {
    const uint64_t id = layout.sequences[i].seq_id;
    caches.push_back({cache.keys(id, layer), cache.values(id, layer), held[i]});
  }
  const AttentionTable t = build_attention_table(layout, caches);

  // One copy: key pointers, value pointers, lengths.
  const size_t ptr_bytes = n * sizeof(const float*);
  std::memcpy(staged + in.keys, t.keys.data(), ptr_bytes);
  std::memcpy(staged + in.values, t.values.data(), ptr_bytes);
  std::memcpy(staged + in.lens, t.kv_lens.data(), n * sizeof(int32_t));
  upload(uploaded + in.keys, staged + in.keys, in.bytes - in.keys, "copy attention table in");
  staging->queued(static_cast<size_t>(layer), stream, "copy attention table in");

  const kernels::AttentionShape shape{cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                                      cfg.sliding_window};
  const int splits = kc::decode_attention_splits(n, cfg.num_heads, t.kv_len_max);
  const kc::DecodeAttentionWorkspace ws = kc::decode_attention_workspace(n, shape, splits);
  void* ws_ptr =
      ws.bytes > 0 ? grow<unsigned char>(attention_ws, ws.bytes, "attention workspace") : nullptr;
  const kc::DecodeAttentionInputs inputs{
      qp, reinterpret_cast<const float* const*>(uploaded + in.keys),
      reinterpret_cast<const float* const*>(uploaded + in.values),
      reinterpret_cast<const int32_t*>(uploaded + in.lens), n};
  kc::decode_attention(inputs, shape, splits, out, ws_ptr, ws.bytes, stream);
}

DeviceRouting GpuRouterStage::Impl::attend_and_route(int64_t layer, const StepLayout& layout,
                                                     float* h, GpuKvCache& cache,
                                                     const ExpertBudget& budget) {
  const int64_t n = layout.rows(), d = cfg.hidden_size, q_dim = cfg.num_heads * cfg.head_dim;
  const DeviceLayer& lw = w->layers[layer];
  const bool moe = cfg.layer_is_moe[layer];
  const std::vector<uint8_t> allowed =
      moe ? resident_mask(budget, cfg, layer) : std::vector<uint8_t>{};
  ok(cudaSetDevice(device), "cudaSetDevice");
  // The layer's small inputs: positions and mask now, the attention table after the appends.
  const LayerInputs in = layer_inputs(n, allowed.size());
  auto* uploaded = grow<unsigned char>(table, static_cast<int64_t>(in.bytes), "layer inputs");
  unsigned char* staged = staging->fill(static_cast<size_t>(layer), in.bytes, "layer inputs");
  std::memcpy(staged + in.positions, layout.positions.data(), n * sizeof(int32_t));
  if (!allowed.empty()) std::memcpy(staged + in.allowed, allowed.data(), allowed.size());
  upload(uploaded, staged, in.first_end, "copy positions and allowed experts in");
  staging->queued(static_cast<size_t>(layer), stream, "copy positions and allowed experts in");

  float* normed_rows = grow<float>(normed, n * d, "normed");
  float* attn_out = grow<float>(attn, n * q_dim, "attention out");
  float* projected = grow<float>(proj, n * d, "projection");
  float* expert_rows = grow<float>(rows, n * d, "expert rows");
  kc::rms_norm(h, lw.input_norm, n, d, cfg.rms_norm_eps, normed_rows, stream);
  attention(layer, layout, normed_rows, cache, in, staged, uploaded, attn_out);
  uint16_t* ab = grow<uint16_t>(a_bf16, n * std::max(d, q_dim), "bf16 rows");
  kc::f32_to_bf16(attn_out, n * q_dim, ab, stream);
  gemm(ab, lw.o, n, projected, "o projection");
  kc::add_values(h, projected, n * d, stream);
  kc::rms_norm(h, lw.post_attention_norm, n, d, cfg.rms_norm_eps, expert_rows, stream);
  DeviceRouting r;
  r.layer = layer;
  r.rows = n;
  if (!moe) {
    mlp(lw.dense_mlp, expert_rows, n, projected);
    kc::add_values(h, projected, n * d, stream);
    return r;
  }
  const int64_t k = budget_top_k(budget, cfg, layer), e = cfg.num_experts;
  float* logits_out = grow<float>(gate_logits, n * e, "gate logits");
  int32_t* ids = grow<int32_t>(experts, n * k, "expert ids");
  float* gate_weights = grow<float>(weights, n * k, "expert weights");
  kc::gate_matmul(expert_rows, n, {kernels::WeightType::f32, lw.router_gate, e, d}, logits_out,
                  stream);
  kc::route_top_k(
      logits_out, n, static_cast<int>(e), static_cast<int>(k), cfg.norm_topk_prob, ids,
      gate_weights, stream,
      allowed.empty() ? nullptr : reinterpret_cast<const uint8_t*>(uploaded + in.allowed));
  r.top_k = k;
  r.expert_rows = expert_rows;
  r.experts = ids;
  r.weights = gate_weights;
  return r;
}

void GpuRouterStage::Impl::combine(int64_t layer, int64_t n, const float* expert_rows,
                                   const float* routed, float* h) {
  const int64_t d = cfg.hidden_size;
  const DeviceLayer& lw = w->layers[layer];
  ok(cudaSetDevice(device), "cudaSetDevice");
  kc::add_values(h, routed, n * d, stream);
  if (lw.shared_expert.empty()) return;
  float* out = grow<float>(normed, n * d, "shared expert out");
  mlp(lw.shared_expert, expert_rows, n, out);
  kc::gated_add_rows(h, out, expert_rows, lw.shared_expert_gate, n, d, stream);
}

void GpuRouterStage::Impl::logits_of(const float* src, int64_t n, float* out) {
  const int64_t d = cfg.hidden_size, vocab = w->lm_head.rows;
  float* normed_rows = grow<float>(normed, n * d, "normed");
  uint16_t* ab = grow<uint16_t>(a_bf16, n * d, "bf16 rows");
  float* lg = grow<float>(logits, n * vocab, "logits");
  kc::rms_norm(src, w->final_norm, n, d, cfg.rms_norm_eps, normed_rows, stream);
  kc::f32_to_bf16(normed_rows, n * d, ab, stream);
  gemm(ab, w->lm_head, n, lg, "lm_head");
  download(out, lg, n * vocab * sizeof(float), "copy logits out");
  wait("logits");
}

GpuRouterStage::GpuRouterStage(const ModelConfig& cfg, const RouterWeights& weights, int device) {
  require_cuda_device(device, "GPU router stage");
  auto m = std::make_unique<Impl>(cfg, device);
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    if (cfg.layer_is_moe[l] &&
        (cfg.num_experts > kc::kGateMaxExperts || cfg.top_k > kc::kGateMaxTopK))
      throw Error(m->who + ": " + std::to_string(cfg.num_experts) + " experts, top-" +
                  std::to_string(cfg.top_k) + " exceed route_top_k's " +
                  std::to_string(kc::kGateMaxExperts) + " experts, top-" +
                  std::to_string(kc::kGateMaxTopK));
  if (static_cast<int64_t>(weights.layers.size()) != cfg.num_layers)
    throw Error(m->who + ": " + std::to_string(weights.layers.size()) + " layers of weights for " +
                std::to_string(cfg.num_layers) + " layers");
  m->ok(cudaSetDevice(device), "cudaSetDevice");
  m->ok(cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  try {
    m->blas = std::make_unique<kc::CublasHandle>();
  } catch (const std::exception& e) {
    throw Error(m->who + ": " + e.what());
  }
  m->w = std::make_unique<DeviceRouterWeights>(cfg, weights, m->who);
  m->staging = std::make_unique<PinnedStaging>(static_cast<size_t>(cfg.num_layers) + 1, m->who);
  int64_t bytes = m->w->lm_head.bytes();
  for (const DeviceLayer& l : m->w->layers) {
    bytes += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.o.bytes();
    bytes += l.router_gate_floats * static_cast<int64_t>(sizeof(float));
    bytes += l.shared_expert.bytes() + l.dense_mlp.bytes();
  }
  m->bytes_per_step = bytes;
  impl_ = std::move(m);
}

GpuRouterStage::~GpuRouterStage() = default;

int GpuRouterStage::device() const {
  return impl_->device;
}

CUstream_st* GpuRouterStage::stream() const {
  return impl_->stream;
}

int64_t GpuRouterStage::bytes_per_step() const {
  return impl_->bytes_per_step;
}

int64_t GpuRouterStage::weight_bytes() const {
  return impl_->w->allocated_bytes();
}

// ---- device-resident forms ----

void GpuRouterStage::embed_device(const int32_t* tokens, int64_t n, float* hidden) {
  Impl& m = *impl_;
  m.check_tokens(tokens, n);
  if (n <= 0) return;
  if (!hidden) throw Error(m.who + ": embed of " + std::to_string(n) + " tokens into null");
  with_context([&] { return m.who + ": embed " + std::to_string(n) + " tokens"; },
               [&] { m.embed(tokens, n, hidden); });
}

DeviceRouting GpuRouterStage::attend_and_route_device(int64_t layer, const StepLayout& layout,
                                                      float* hidden, GpuKvCache& cache,
                                                      const ExpertBudget& budget) {
  Impl& m = *impl_;
  m.check_layer(layer, layout, cache);
  const int64_t n = layout.rows();
  if (n == 0) return DeviceRouting{layer, 0, 0, nullptr, nullptr, nullptr};
  if (!hidden)
    throw Error(m.who + ": layer " + std::to_string(layer) + ": null hidden for " +
                std::to_string(n) + " rows");
  return with_context(
      [&] {
        return m.who + ": layer " + std::to_string(layer) + ", " + std::to_string(n) + " rows";
      },
      [&] { return m.attend_and_route(layer, layout, hidden, cache, budget); });
}

void GpuRouterStage::combine_device(const DeviceRouting& routing, const float* routed,
                                    float* hidden) {
  Impl& m = *impl_;
  check_device_routing(routing, m.cfg, m.who + ": combine");
  if (routing.rows == 0) return;
  if (!routed || !hidden)
    throw Error(m.who + ": combine of layer " + std::to_string(routing.layer) + ": null " +
                (routed ? "hidden" : "routed rows"));
  with_context(
      [&] {
        return m.who + ": combine layer " + std::to_string(routing.layer) + ", " +
               std::to_string(routing.rows) + " rows";
      },
      [&] { m.combine(routing.layer, routing.rows, routing.expert_rows, routed, hidden); });
}

void GpuRouterStage::logits_device(const float* hidden, int64_t n, const std::vector<int64_t>& rows,
                                   float* out) {
  Impl& m = *impl_;
  const std::vector<RowRun> runs = row_runs(rows, n, m.who + ": logits");
  const int64_t picked = static_cast<int64_t>(rows.size()), d = m.cfg.hidden_size;
  if (picked == 0) return;
  if (!hidden || !out) throw Error(m.who + ": logits of " + std::to_string(picked) + " rows: null");
  with_context(
      [&] { return m.who + ": logits of " + std::to_string(picked) + " rows"; },
      [&] {
        m.ok(cudaSetDevice(m.device), "cudaSetDevice");
        const float* src = hidden;
        if (!is_identity(runs, n)) {  // pack the wanted rows: one copy per run
          float* p = m.grow<float>(m.picked, picked * d, "logits rows");
          for (const RowRun& r : runs)
            m.ok(cudaMemcpyAsync(p + r.target * d, hidden + r.source * d,
                                 r.count * d * sizeof(float), cudaMemcpyDeviceToDevice, m.stream),
                 "pack logits rows");
          src = p;
        }
        m.logits_of(src, picked, out);
      });
}

#else  // built without CUDA: the constructor always refuses.

struct GpuRouterStage::Impl {};

GpuRouterStage::GpuRouterStage(const ModelConfig&, const RouterWeights&, int device) {
  require_cuda_device(device, "GPU router stage");
}
GpuRouterStage::~GpuRouterStage() = default;
int GpuRouterStage::device() const {
  return -1;
}
CUstream_st* GpuRouterStage::stream() const {
  return nullptr;
}
void GpuRouterStage::embed_device(const int32_t*, int64_t, float*) {
  throw Error("GPU router stage: built without CUDA");
}
DeviceRouting GpuRouterStage::attend_and_route_device(int64_t, const StepLayout&, float*,
                                                      GpuKvCache&, const ExpertBudget&) {
  throw Error("GPU router stage: built without CUDA");
}
void GpuRouterStage::combine_device(const DeviceRouting&, const float*, float*) {
  throw Error("GPU router stage: built without CUDA");
}
void GpuRouterStage::logits_device(const float*, int64_t, const std::vector<int64_t>&, float*) {
  throw Error("GPU router stage: built without CUDA");
}
void GpuRouterStage::embed(const int32_t*, int64_t, float*) {
  throw Error("GPU router stage: built without CUDA");
}
TokenBatch GpuRouterStage::attend_and_route(int64_t, const StepLayout&, float*, GpuKvCache&,
                                            const ExpertBudget&) {
  throw Error("GPU router stage: built without CUDA");
}
void GpuRouterStage::combine(const TokenBatch&, const float*, float*) {
  throw Error("GPU router stage: built without CUDA");
}
void GpuRouterStage::logits(const float*, const std::vector<int64_t>&, float*) {
  throw Error("GPU router stage: built without CUDA");
}
int64_t GpuRouterStage::bytes_per_step() const {
  return 0;
}
int64_t GpuRouterStage::weight_bytes() const {
  return 0;
}

#endif

}  // namespace moeflow
