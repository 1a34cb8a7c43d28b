#include "model/gpu_router_stage.h"

#include <string>

#include "core/error.h"
#include "model/gpu_device.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda/cublas_api.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gate_matmul.h"
#include "kernels/cuda/moe_gate.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "model/gpu_attention_table.h"
#include "model/gpu_buffer.h"
#include "model/gpu_router_weights.h"
#endif

namespace moeflow {

#if MOEFLOW_HAVE_CUDA

namespace kc = kernels::cuda;

struct GpuRouterStage::Impl {
  const ModelConfig& cfg;
  int device = 0;
  std::string who;  // "GPU router stage on cuda:N", the prefix of every error
  cudaStream_t stream = nullptr;
  std::unique_ptr<kc::CublasHandle> blas;
  std::unique_ptr<DeviceRouterWeights> w;
  int64_t bytes_per_step = 0;
  // Scratch, grown on demand: fp32 activations, the bf16 A operand of the GEMMs, the MLP's
  // gate/up and activation, routing, attention's table and workspace.
  DeviceBuffer hidden, normed, rows, a_bf16, q, k, v, attn, proj, mlp_gate, mlp_up, act_bf16,
      gate_logits, experts, weights, allowed, positions, tokens, table, attention_ws, logits;
  std::vector<unsigned char> table_host;

  Impl(const ModelConfig& c, int dev)
      : cfg(c), device(dev), who("GPU router stage on cuda:" + std::to_string(dev)) {}
  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }

  void ok(cudaError_t e, const char* what) const {
    if (e != cudaSuccess) cuda_ok(e, who + ": " + what);
  }
  // A scratch buffer of at least `count` T. Growing frees the old memory, which queued work may
  // still use: wait for the stream first (growth is rare; sizes only go up).
  template <class T>
  T* grow(DeviceBuffer& b, int64_t count, const char* what) {
    const size_t need = static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T);
    if (need > b.bytes()) {
      wait("wait before growing a buffer");
      b.reserve(need, (who + " " + what).c_str());
    }
    return b.as<T>();
  }
  void upload(void* dst, const void* src, size_t bytes, const char* what) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), what);
  }
  void download(void* dst, const void* src, size_t bytes, const char* what) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), what);
  }
  void wait(const char* what) { ok(cudaStreamSynchronize(stream), what); }

  // out[n, w.rows] fp32 = a[n, w.cols] (bf16) · wᵀ.
  void gemm(const uint16_t* a, const DeviceMatrix& m, int64_t n, float* out, const char* what) {
    kc::gemm_rows_by_weights(*blas, a, m.data, out, kc::GemmOut::f32, n, m.rows, m.cols, stream,
                             what);
  }

  // out[n, d] = down(silu(gate(x)) * up(x)), x fp32 [n, d] on the device.
  void mlp(const DeviceMlp& m, const float* x, int64_t n, float* out) {
    const int64_t d = cfg.hidden_size, inter = m.gate.rows;
    uint16_t* xb = grow<uint16_t>(a_bf16, n * d, "bf16 rows");
    kc::f32_to_bf16(x, n * d, xb, stream);
    float* g = grow<float>(mlp_gate, n * inter, "mlp gate");
    float* u = grow<float>(mlp_up, n * inter, "mlp up");
    gemm(xb, m.gate, n, g, "mlp gate");
    gemm(xb, m.up, n, u, "mlp up");
    uint16_t* act = grow<uint16_t>(act_bf16, n * inter, "mlp activation");
    kc::silu_mul_to_bf16(g, u, n * inter, act, stream);
    gemm(act, m.down, n, out, "mlp down");
  }

  void attention(int64_t layer, const StepLayout& layout, const float* x, GpuKvCache& cache,
                 float* out);
};

// Causal attention of the layout's rows (x: normed, [n, d], device) into out [n, q_dim].
void GpuRouterStage::Impl::attention(int64_t layer, const StepLayout& layout, const float* x,
                                     GpuKvCache& cache, float* out) {
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
  int32_t* pos = grow<int32_t>(positions, n, "positions");
  upload(pos, layout.positions.data(), n * sizeof(int32_t), "copy positions in");
  kc::rope_rotate_half({qp, q_dim, cfg.num_heads}, {kp, kv_dim, cfg.num_kv_heads}, n, cfg.head_dim,
                       pos, w->rope_inv_freq, stream);

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

  // One upload: key pointers, value pointers, lengths.
  const size_t ptr_bytes = n * sizeof(const float*);
  table_host.resize(2 * ptr_bytes + n * sizeof(int32_t));
  std::memcpy(table_host.data(), t.keys.data(), ptr_bytes);
  std::memcpy(table_host.data() + ptr_bytes, t.values.data(), ptr_bytes);
  std::memcpy(table_host.data() + 2 * ptr_bytes, t.kv_lens.data(), n * sizeof(int32_t));
  auto* tab = grow<unsigned char>(table, static_cast<int64_t>(table_host.size()), "table");
  upload(tab, table_host.data(), table_host.size(), "copy attention table in");

  const kernels::AttentionShape shape{cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                                      cfg.sliding_window};
  const int splits = kc::decode_attention_splits(n, cfg.num_heads, t.kv_len_max);
  const kc::DecodeAttentionWorkspace ws = kc::decode_attention_workspace(n, shape, splits);
  void* ws_ptr =
      ws.bytes > 0 ? grow<unsigned char>(attention_ws, ws.bytes, "attention workspace") : nullptr;
  const kc::DecodeAttentionInputs in{qp, reinterpret_cast<const float* const*>(tab),
                                     reinterpret_cast<const float* const*>(tab + ptr_bytes),
                                     reinterpret_cast<const int32_t*>(tab + 2 * ptr_bytes), n};
  kc::decode_attention(in, shape, splits, out, ws_ptr, ws.bytes, stream);
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

int64_t GpuRouterStage::bytes_per_step() const {
  return impl_->bytes_per_step;
}

int64_t GpuRouterStage::weight_bytes() const {
  return impl_->w->allocated_bytes();
}

namespace {

// Runs `body`, turning a kernel's std::invalid_argument / std::runtime_error into moeflow::Error
// with the stage, the call and its size. `context` is called only on failure, so the hot path
// builds no strings.
template <class C, class F>
auto with_context(C&& context, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(context() + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(context() + ": " + e.what());
  }
}

}  // namespace

void GpuRouterStage::embed(const int32_t* tokens, int64_t n, float* hidden) {
  Impl& m = *impl_;
  const int64_t d = m.cfg.hidden_size;
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= m.cfg.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (size " +
                  std::to_string(m.cfg.vocab_size) + ")");
  if (n <= 0) return;
  with_context([&] { return m.who + ": embed " + std::to_string(n) + " tokens"; },
               [&] {
                 m.ok(cudaSetDevice(m.device), "cudaSetDevice");
                 int32_t* t = m.grow<int32_t>(m.tokens, n, "tokens");
                 float* h = m.grow<float>(m.hidden, n * d, "hidden");
                 m.upload(t, tokens, n * sizeof(int32_t), "copy tokens in");
                 kc::embed_rows_bf16(m.w->embed.data, m.w->embed.rows, d, t, n, h, m.stream);
                 m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
                 m.wait("embed");
               });
}

TokenBatch GpuRouterStage::attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                                            GpuKvCache& cache, const ExpertBudget& budget) {
  Impl& m = *impl_;
  const ModelConfig& cfg = m.cfg;
  const int64_t n = layout.rows(), d = cfg.hidden_size;
  if (layer < 0 || layer >= cfg.num_layers)
    throw Error(m.who + ": layer " + std::to_string(layer) + " of " +
                std::to_string(cfg.num_layers));
  if (cache.device() != m.device || cache.num_layers() != cfg.num_layers ||
      cache.kv_dim() != cfg.num_kv_heads * cfg.head_dim)
    throw Error(m.who + ": a kv cache on cuda:" + std::to_string(cache.device()) + " with " +
                std::to_string(cache.num_layers()) + " layers of width " +
                std::to_string(cache.kv_dim()) + " (the model has " +
                std::to_string(cfg.num_layers) + " of width " +
                std::to_string(cfg.num_kv_heads * cfg.head_dim) + ")");
  check_step_layout(layout);
  TokenBatch batch;
  batch.layer = layer;
  batch.hidden_size = d;
  if (n == 0) return batch;
  const DeviceLayer& lw = m.w->layers[layer];
  const auto context = [&] {
    return m.who + ": layer " + std::to_string(layer) + ", " + std::to_string(n) + " rows";
  };
  return with_context(context, [&] {
    m.ok(cudaSetDevice(m.device), "cudaSetDevice");
    float* h = m.grow<float>(m.hidden, n * d, "hidden");
    float* normed = m.grow<float>(m.normed, n * d, "normed");
    float* attn = m.grow<float>(m.attn, n * cfg.num_heads * cfg.head_dim, "attention out");
    float* proj = m.grow<float>(m.proj, n * d, "projection");
    float* rows = m.grow<float>(m.rows, n * d, "expert rows");
    m.upload(h, hidden, n * d * sizeof(float), "copy hidden in");
    kc::rms_norm(h, lw.input_norm, n, d, cfg.rms_norm_eps, normed, m.stream);
    m.attention(layer, layout, normed, cache, attn);
    uint16_t* ab =
        m.grow<uint16_t>(m.a_bf16, n * std::max(d, cfg.num_heads * cfg.head_dim), "bf16 rows");
    kc::f32_to_bf16(attn, n * cfg.num_heads * cfg.head_dim, ab, m.stream);
    m.gemm(ab, lw.o, n, proj, "o projection");
    kc::add_values(h, proj, n * d, m.stream);
    kc::rms_norm(h, lw.post_attention_norm, n, d, cfg.rms_norm_eps, rows, m.stream);
    if (!cfg.layer_is_moe[layer]) {
      m.mlp(lw.dense_mlp, rows, n, proj);
      kc::add_values(h, proj, n * d, m.stream);
      m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
      m.wait("dense layer");
      return batch;
    }
    const int64_t k = budget_top_k(budget, cfg, layer);
    const std::vector<uint8_t> allowed = resident_mask(budget, cfg, layer);
    const int64_t e = cfg.num_experts;
    float* logits = m.grow<float>(m.gate_logits, n * e, "gate logits");
    int32_t* experts = m.grow<int32_t>(m.experts, n * k, "expert ids");
    float* weights = m.grow<float>(m.weights, n * k, "expert weights");
    uint8_t* allowed_dev = nullptr;
    if (!allowed.empty()) {
      allowed_dev = m.grow<uint8_t>(m.allowed, e, "allowed experts");
      m.upload(allowed_dev, allowed.data(), e, "copy allowed experts in");
    }
    kc::gate_matmul(rows, n, {kernels::WeightType::f32, lw.router_gate, e, d}, logits, m.stream);
    kc::route_top_k(logits, n, static_cast<int>(e), static_cast<int>(k), cfg.norm_topk_prob,
                    experts, weights, m.stream, allowed_dev);
    batch.top_k = k;
    batch.seq_ids = layout.row_seq_ids;
    batch.positions = layout.positions;
    batch.rows.resize(n * d);
    batch.experts.resize(n * k);
    batch.weights.resize(n * k);
    m.download(batch.rows.data(), rows, n * d * sizeof(float), "copy expert rows out");
    m.download(batch.experts.data(), experts, n * k * sizeof(int32_t), "copy expert ids out");
    m.download(batch.weights.data(), weights, n * k * sizeof(float), "copy expert weights out");
    m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
    m.wait("moe layer");
    return batch;
  });
}

void GpuRouterStage::combine(const TokenBatch& batch, const float* routed, float* hidden) {
  Impl& m = *impl_;
  const int64_t n = batch.size(), d = m.cfg.hidden_size;
  if (batch.layer < 0 || batch.layer >= m.cfg.num_layers || batch.hidden_size != d)
    throw Error(m.who + ": combine of a batch for layer " + std::to_string(batch.layer) +
                ", hidden size " + std::to_string(batch.hidden_size));
  if (n == 0) return;
  const DeviceLayer& lw = m.w->layers[batch.layer];
  const bool shared = !lw.shared_expert.empty();
  if (shared && static_cast<int64_t>(batch.rows.size()) != n * d)
    throw Error(m.who + ": combine of layer " + std::to_string(batch.layer) + ": " +
                std::to_string(batch.rows.size()) + " row values for " + std::to_string(n) +
                " rows of " + std::to_string(d));
  with_context(
      [&] {
        return m.who + ": combine layer " + std::to_string(batch.layer) + ", " + std::to_string(n) +
               " rows";
      },
      [&] {
        m.ok(cudaSetDevice(m.device), "cudaSetDevice");
        float* h = m.grow<float>(m.hidden, n * d, "hidden");
        float* r = m.grow<float>(m.proj, n * d, "routed");
        m.upload(h, hidden, n * d * sizeof(float), "copy hidden in");
        m.upload(r, routed, n * d * sizeof(float), "copy routed in");
        kc::add_values(h, r, n * d, m.stream);
        if (shared) {
          float* rows = m.grow<float>(m.rows, n * d, "expert rows");
          float* out = m.grow<float>(m.normed, n * d, "shared expert out");
          m.upload(rows, batch.rows.data(), n * d * sizeof(float), "copy rows in");
          m.mlp(lw.shared_expert, rows, n, out);
          kc::gated_add_rows(h, out, rows, lw.shared_expert_gate, n, d, m.stream);
        }
        m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
        m.wait("combine");
      });
}

void GpuRouterStage::logits(const float* hidden, const std::vector<int64_t>& rows, float* out) {
  Impl& m = *impl_;
  const int64_t d = m.cfg.hidden_size, n = static_cast<int64_t>(rows.size());
  const int64_t vocab = m.w->lm_head.rows;
  if (n == 0) return;
  std::vector<float> picked(n * d);  // the chosen rows, packed for one copy
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i] < 0) throw Error(m.who + ": logits of row " + std::to_string(rows[i]));
    std::copy(hidden + rows[i] * d, hidden + (rows[i] + 1) * d, picked.data() + i * d);
  }
  with_context([&] { return m.who + ": logits of " + std::to_string(n) + " rows"; },
               [&] {
                 m.ok(cudaSetDevice(m.device), "cudaSetDevice");
                 float* h = m.grow<float>(m.hidden, n * d, "hidden");
                 float* normed = m.grow<float>(m.normed, n * d, "normed");
                 uint16_t* ab = m.grow<uint16_t>(m.a_bf16, n * d, "bf16 rows");
                 float* lg = m.grow<float>(m.logits, n * vocab, "logits");
                 m.upload(h, picked.data(), n * d * sizeof(float), "copy rows in");
                 kc::rms_norm(h, m.w->final_norm, n, d, m.cfg.rms_norm_eps, normed, m.stream);
                 kc::f32_to_bf16(normed, n * d, ab, m.stream);
                 m.gemm(ab, m.w->lm_head, n, lg, "lm_head");
                 m.download(out, lg, n * vocab * sizeof(float), "copy logits out");
                 m.wait("logits");
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
