// The GPU expert stage: cuBLAS for the two GEMMs (per non-empty slot, bf16 operands, fp32
// accumulation), our kernels for the memory-bound steps around them (grouping, gather, SwiGLU,
// combine). Why cuBLAS and why one cublasGemmEx per slot rather than cublasGemmGroupedBatchedEx:
// docs/cuda.md ("GEMMs").
#include <cuda_bf16.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/expert_combine.h"
#include "kernels/cuda/expert_rounding.cuh"
#include "kernels/cuda/expert_small_batch.h"
#include "kernels/cuda/expert_stage.h"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kRowThreads = 128;  // gather / SwiGLU: one block per position, threads over columns

// --- grouping (device) ------------------------------------------------------------------------

__global__ void count_kernel(const int32_t* __restrict__ experts, int64_t pairs,
                             const int32_t* __restrict__ slot_of_expert, int64_t num_experts,
                             int64_t slots, int32_t* __restrict__ pair_slot,
                             int32_t* __restrict__ counts, int32_t* __restrict__ expert_pairs) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= pairs) return;
  const int32_t e = experts[p];
  int32_t s = e >= 0 && e < num_experts ? slot_of_expert[e] : -1;
  if (s >= slots) s = -1;
  pair_slot[p] = s;
  if (s < 0) return;
  atomicAdd(&counts[s], 1);
  if (expert_pairs) atomicAdd(&expert_pairs[e], 1);
}

// Prefix sums over the slots (a few hundred at most: one thread is enough).
__global__ void scan_kernel(const int32_t* __restrict__ counts, int64_t slots,
                            int32_t* __restrict__ offsets, int32_t* __restrict__ cursors) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int32_t at = 0;
  for (int64_t s = 0; s < slots; ++s) {
    offsets[s] = at;
    cursors[s] = at;
    at += counts[s];
  }
  offsets[slots] = at;
}

__global__ void scatter_kernel(const int32_t* __restrict__ pair_slot, int64_t pairs,
                               int32_t* __restrict__ cursors, int32_t* __restrict__ perm,
                               int32_t* __restrict__ pos_of_pair) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= pairs) return;
  const int32_t s = pair_slot[p];
  int32_t pos = -1;
  if (s >= 0) {
    pos = atomicAdd(&cursors[s], 1);
    perm[pos] = static_cast<int32_t>(p);
  }
  pos_of_pair[p] = pos;
}

// --- gather: a[pos] = bf16(x[perm[pos] / top_k]) ------------------------------------------------
// One block per position. kVec: 8 columns per thread, two 16-byte loads, one 16-byte store
// (hidden % 8 == 0 and x 16-byte aligned). A pair outside [0, pairs) - routing inconsistent
// with the counts - gives a zero row rather than a read out of bounds.
template <bool kVec>
__global__ void __launch_bounds__(kRowThreads)
    gather_rows_kernel(const float* __restrict__ x, const int32_t* __restrict__ perm, int64_t pairs,
                       int64_t top_k, int64_t hidden, __nv_bfloat16* __restrict__ a) {
  const int64_t pos = blockIdx.x;
  const int32_t pair = perm[pos];
  const bool valid = pair >= 0 && pair < pairs;
  detail::row_to_bf16<kVec, kRowThreads>(x + (valid ? pair / top_k : 0) * hidden, valid, hidden,
                                         a + pos * hidden);
}

// --- SwiGLU: act[pos, i] = silu(gate_up[pos, 2i]) * gate_up[pos, 2i + 1] ------------------------

// One block per position. kVec: 8 outputs per thread from 32 bytes of (gate, up) pairs, one
// 16-byte store (inter % 8 == 0; rows are then 32- and 16-byte aligned in the workspace).
template <bool kVec>
__global__ void __launch_bounds__(kRowThreads)
    swiglu_kernel(const __nv_bfloat16* __restrict__ gate_up, int64_t inter,
                  __nv_bfloat16* __restrict__ act) {
  const int64_t pos = blockIdx.x;
  const __nv_bfloat16* src = gate_up + pos * 2 * inter;
  __nv_bfloat16* dst = act + pos * inter;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x * 8; c < inter; c += kRowThreads * 8) {
      alignas(16) __nv_bfloat162 gu[8];  // .x gate, .y up (column 2i sits below 2i + 1)
      reinterpret_cast<uint4*>(gu)[0] = reinterpret_cast<const uint4*>(src + 2 * c)[0];
      reinterpret_cast<uint4*>(gu)[1] = reinterpret_cast<const uint4*>(src + 2 * c)[1];
      alignas(16) __nv_bfloat162 o[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        o[j] = __floats2bfloat162_rn(
            detail::swiglu(__low2float(gu[2 * j]), __high2float(gu[2 * j])),
            detail::swiglu(__low2float(gu[2 * j + 1]), __high2float(gu[2 * j + 1])));
      *reinterpret_cast<uint4*>(dst + c) = *reinterpret_cast<const uint4*>(o);
    }
  } else {
    for (int64_t c = threadIdx.x; c < inter; c += kRowThreads)
      dst[c] = __float2bfloat16(
          detail::swiglu(__bfloat162float(src[2 * c]), __bfloat162float(src[2 * c + 1])));
  }
}

// --- host side --------------------------------------------------------------------------------

template <class T>
T* at(void* workspace, size_t offset) {
  return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + offset);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

unsigned blocks_for(int64_t items, int threads) {
  return static_cast<unsigned>((items + threads - 1) / threads);
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("expert_stage: ") + what);
}

}  // namespace

ExpertLayer::ExpertLayer(int64_t num_experts, int64_t hidden, int64_t inter,
                         const std::vector<HostExpert>& held) {
  if (num_experts <= 0 || hidden <= 0 || inter <= 0)
    throw std::invalid_argument("ExpertLayer: non-positive shape (experts " +
                                std::to_string(num_experts) + ", hidden " + std::to_string(hidden) +
                                ", inter " + std::to_string(inter) + ")");
  slot_of_.assign(num_experts, -1);
  for (size_t i = 0; i < held.size(); ++i) {
    const int32_t e = held[i].expert;
    if (e < 0 || e >= num_experts || slot_of_[e] >= 0)
      throw std::invalid_argument("ExpertLayer: expert " + std::to_string(e) +
                                  " out of range or given twice");
    slot_of_[e] = static_cast<int32_t>(i);
  }
  const int64_t slots = static_cast<int64_t>(held.size());
  const size_t row = static_cast<size_t>(hidden) * sizeof(uint16_t);  // one gate / up row
  const size_t matrix = static_cast<size_t>(inter) * row;             // one [inter, hidden]
  bytes_ = 3 * slots * matrix + static_cast<size_t>(num_experts) * sizeof(int32_t);
  MOEFLOW_CUDA_CHECK(cudaMalloc(&weights_, bytes_));
  auto* gate_up = static_cast<unsigned char*>(weights_);
  unsigned char* down = gate_up + 2 * slots * matrix;
  unsigned char* map = down + slots * matrix;
  try {
    for (int64_t s = 0; s < slots; ++s) {
      // Interleave rows: gate row i -> row 2i, up row i -> row 2i + 1 (destination pitch 2 rows).
      unsigned char* dst = gate_up + 2 * s * matrix;
      MOEFLOW_CUDA_CHECK(
          cudaMemcpy2D(dst, 2 * row, held[s].gate, row, row, inter, cudaMemcpyHostToDevice));
      MOEFLOW_CUDA_CHECK(
          cudaMemcpy2D(dst + row, 2 * row, held[s].up, row, row, inter, cudaMemcpyHostToDevice));
      MOEFLOW_CUDA_CHECK(
          cudaMemcpy(down + s * matrix, held[s].down, matrix, cudaMemcpyHostToDevice));
    }
    MOEFLOW_CUDA_CHECK(cudaMemcpy(map, slot_of_.data(), slot_of_.size() * sizeof(int32_t),
                                  cudaMemcpyHostToDevice));
  } catch (...) {
    cudaFree(weights_);
    throw;
  }
  view_.gate_up = reinterpret_cast<const uint16_t*>(gate_up);
  view_.down = reinterpret_cast<const uint16_t*>(down);
  view_.slot_of_expert = reinterpret_cast<const int32_t*>(map);
  view_.num_experts = num_experts;
  view_.slots = slots;
  view_.hidden = hidden;
  view_.inter = inter;
}

ExpertLayer::~ExpertLayer() {
  cudaFree(weights_);
}

void expert_group(const ExpertLayerView& w, int64_t pairs, const int32_t* experts, void* workspace,
                  size_t workspace_bytes, int32_t* expert_pairs, cudaStream_t stream) {
  const ExpertWorkspaceLayout l = expert_workspace_layout(pairs, w.slots, w.hidden, w.inter);
  if (workspace_bytes < l.bytes)
    throw std::invalid_argument("expert_group: workspace of " + std::to_string(workspace_bytes) +
                                " bytes, " + std::to_string(l.bytes) + " needed");
  require(reinterpret_cast<uintptr_t>(workspace) % 256 == 0, "workspace not 256-byte aligned");
  auto* counts = at<int32_t>(workspace, l.counts);
  auto* cursors = at<int32_t>(workspace, l.cursors);
  auto* pair_slot = at<int32_t>(workspace, l.pair_slot);
  if (w.slots > 0)
    MOEFLOW_CUDA_CHECK(cudaMemsetAsync(counts, 0, w.slots * sizeof(int32_t), stream));
  if (pairs > 0) {
    count_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(
        experts, pairs, w.slot_of_expert, w.num_experts, w.slots, pair_slot, counts, expert_pairs);
    MOEFLOW_CUDA_CHECK_LAUNCH("count_kernel");
  }
  scan_kernel<<<1, 32, 0, stream>>>(counts, w.slots, at<int32_t>(workspace, l.offsets), cursors);
  MOEFLOW_CUDA_CHECK_LAUNCH("scan_kernel");
  if (pairs > 0) {
    scatter_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(
        pair_slot, pairs, cursors, at<int32_t>(workspace, l.perm),
        at<int32_t>(workspace, l.pos_of_pair));
    MOEFLOW_CUDA_CHECK_LAUNCH("scatter_kernel");
  }
}

void expert_stage(const ExpertLayerView& w, const CublasHandle& blas, const float* x, int64_t n,
                  int64_t top_k, const ExpertRouting& routing, const float* weights, float* out,
                  void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const ExpertStagePlan plan = plan_expert_stage(w.slots, w.hidden, w.inter, n, top_k,
                                                 routing.counts, workspace, workspace_bytes);
  if (n == 0) return;
  require(out && weights && routing.pos_of_pair, "null out, weights or pos_of_pair");
  const ExpertWorkspaceLayout& l = plan.layout;
  const int64_t H = w.hidden, I = w.inter, pairs = n * top_k;
  auto* expert_out = at<float>(workspace, l.expert_out);
  if (plan.positions > 0) {
    require(x && routing.perm && w.gate_up && w.down, "null x, perm or weights");
    auto* gathered = at<__nv_bfloat16>(workspace, l.gathered);
    auto* gate_up = at<__nv_bfloat16>(workspace, l.gate_up);
    auto* act = at<__nv_bfloat16>(workspace, l.activations);
    const auto blocks = static_cast<unsigned>(plan.positions);  // <= INT_MAX (plan checked)

    if (H % 8 == 0 && aligned16(x))
      gather_rows_kernel<true>
          <<<blocks, kRowThreads, 0, stream>>>(x, routing.perm, pairs, top_k, H, gathered);
    else
      gather_rows_kernel<false>
          <<<blocks, kRowThreads, 0, stream>>>(x, routing.perm, pairs, top_k, H, gathered);
    MOEFLOW_CUDA_CHECK_LAUNCH("gather_rows_kernel");

    for (const ExpertGemmSlice& s : plan.slices)
      gemm_rows_by_weights(blas, reinterpret_cast<const uint16_t*>(gathered + s.first_position * H),
                           w.gate_up + s.slot * 2 * I * H, gate_up + s.first_position * 2 * I,
                           GemmOut::bf16, s.rows, 2 * I, H, stream, "gate_up slot", s.slot);

    if (I % 8 == 0)
      swiglu_kernel<true><<<blocks, kRowThreads, 0, stream>>>(gate_up, I, act);
    else
      swiglu_kernel<false><<<blocks, kRowThreads, 0, stream>>>(gate_up, I, act);
    MOEFLOW_CUDA_CHECK_LAUNCH("swiglu_kernel");

    for (const ExpertGemmSlice& s : plan.slices)
      gemm_rows_by_weights(blas, reinterpret_cast<const uint16_t*>(act + s.first_position * I),
                           w.down + s.slot * H * I, expert_out + s.first_position * H, GemmOut::f32,
                           s.rows, H, I, stream, "down slot", s.slot);
  }
  expert_combine(expert_out, routing.pos_of_pair, weights, n, top_k, H, plan.positions, out,
                 stream);
}

void expert_stage_device_routed_cublas(const ExpertLayerView& w, const CublasHandle& blas,
                                       const float* x, int64_t n, int64_t top_k,
                                       const int32_t* experts, const float* weights, float* out,
                                       void* workspace, size_t workspace_bytes,
                                       int32_t* counts_host, int32_t* expert_pairs,
                                       cudaStream_t stream) {
  require(n >= 0 && top_k >= 1, "bad shape");
  if (n == 0) return;
  require(w.slots == 0 || counts_host, "null counts_host");
  const ExpertWorkspaceLayout l = expert_workspace_layout(n * top_k, w.slots, w.hidden, w.inter);
  expert_group(w, n * top_k, experts, workspace, workspace_bytes, expert_pairs, stream);
  if (w.slots > 0) {
    MOEFLOW_CUDA_CHECK(cudaMemcpyAsync(counts_host, at<int32_t>(workspace, l.counts),
                                       w.slots * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
    MOEFLOW_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  const ExpertRouting routing{counts_host, at<int32_t>(workspace, l.perm),
                              at<int32_t>(workspace, l.pos_of_pair)};
  expert_stage(w, blas, x, n, top_k, routing, weights, out, workspace, workspace_bytes, stream);
}

size_t expert_stage_device_routed_workspace_bytes(const ExpertLayerView& w, int64_t n,
                                                  int64_t top_k) {
  return expert_stage_takes_small_batch(n, top_k)
             ? expert_stage_small_batch_workspace_bytes(w, n, top_k)
             : expert_stage_workspace_bytes(w, n, top_k);
}

DeviceRoutedPath expert_stage_device_routed(const ExpertLayerView& w, const CublasHandle& blas,
                                            const float* x, int64_t n, int64_t top_k,
                                            const int32_t* experts, const float* weights,
                                            float* out, void* workspace, size_t workspace_bytes,
                                            int32_t* counts_host, int32_t* expert_pairs,
                                            cudaStream_t stream) {
  if (expert_stage_takes_small_batch(n, top_k)) {
    expert_stage_small_batch(w, x, n, top_k, experts, weights, out, workspace, workspace_bytes,
                             expert_pairs, stream);
    return DeviceRoutedPath::small_batch;
  }
  expert_stage_device_routed_cublas(w, blas, x, n, top_k, experts, weights, out, workspace,
                                    workspace_bytes, counts_host, expert_pairs, stream);
  return DeviceRoutedPath::cublas;
}

}  // namespace moeflow::kernels::cuda
