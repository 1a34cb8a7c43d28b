// GpuRouterStage's host-pointer forms, as the router actor calls them: each copies hidden (and
// the batch) in, runs the device form's body (gpu_router_stage.cpp), copies out and waits.
#include "model/gpu_router_stage.h"

#if MOEFLOW_HAVE_CUDA
#include <algorithm>
#include <string>
#include <vector>

#include "model/gpu_router_stage_impl.h"

namespace moeflow {

void GpuRouterStage::embed(const int32_t* tokens, int64_t n, float* hidden) {
  Impl& m = *impl_;
  m.check_tokens(tokens, n);
  if (n <= 0) return;
  const int64_t d = m.cfg.hidden_size;
  with_context([&] { return m.who + ": embed " + std::to_string(n) + " tokens"; },
               [&] {
                 m.ok(cudaSetDevice(m.device), "cudaSetDevice");
                 float* h = m.grow<float>(m.hidden, n * d, "hidden");
                 m.embed(tokens, n, h);
                 m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
                 m.wait("embed");
               });
}

TokenBatch GpuRouterStage::attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                                            GpuKvCache& cache, const ExpertBudget& budget) {
  Impl& m = *impl_;
  m.check_layer(layer, layout, cache);
  const int64_t n = layout.rows(), d = m.cfg.hidden_size;
  TokenBatch batch;
  batch.layer = layer;
  batch.hidden_size = d;
  if (n == 0) return batch;
  const auto context = [&] {
    return m.who + ": layer " + std::to_string(layer) + ", " + std::to_string(n) + " rows";
  };
  return with_context(context, [&] {
    m.ok(cudaSetDevice(m.device), "cudaSetDevice");
    float* h = m.grow<float>(m.hidden, n * d, "hidden");
    m.upload(h, hidden, n * d * sizeof(float), "copy hidden in");
    const DeviceRouting r = m.attend_and_route(layer, layout, h, cache, budget);
    if (r.top_k > 0) {
      const int64_t k = r.top_k;
      batch.top_k = k;
      batch.seq_ids = layout.row_seq_ids;
      batch.positions = layout.positions;
      batch.rows.resize(n * d);
      batch.experts.resize(n * k);
      batch.weights.resize(n * k);
      m.download(batch.rows.data(), r.expert_rows, n * d * sizeof(float), "copy expert rows out");
      m.download(batch.experts.data(), r.experts, n * k * sizeof(int32_t), "copy expert ids out");
      m.download(batch.weights.data(), r.weights, n * k * sizeof(float), "copy expert weights out");
    }
    m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
    m.wait(r.top_k > 0 ? "moe layer" : "dense layer");
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
  const bool shared = !m.w->layers[batch.layer].shared_expert.empty();
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
        float* r = m.grow<float>(m.routed_in, n * d, "routed");
        float* rows = shared ? m.grow<float>(m.rows, n * d, "expert rows") : nullptr;
        m.upload(h, hidden, n * d * sizeof(float), "copy hidden in");
        m.upload(r, routed, n * d * sizeof(float), "copy routed in");
        if (shared) m.upload(rows, batch.rows.data(), n * d * sizeof(float), "copy rows in");
        m.combine(batch.layer, n, rows, r, h);
        m.download(hidden, h, n * d * sizeof(float), "copy hidden out");
        m.wait("combine");
      });
}

void GpuRouterStage::logits(const float* hidden, const std::vector<int64_t>& rows, float* out) {
  Impl& m = *impl_;
  const int64_t d = m.cfg.hidden_size, n = static_cast<int64_t>(rows.size());
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
                 m.upload(h, picked.data(), n * d * sizeof(float), "copy rows in");
                 m.logits_of(h, n, out);
               });
}

}  // namespace moeflow

#endif
