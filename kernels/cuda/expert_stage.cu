// First version of the GPU expert stage: correct on any shape, not yet fast. The grouped GEMMs
// use WMMA (bf16 16x16x16, fp32 accumulation; HMMA in SASS), one 64x64 tile per block, no
// software pipelining and 2-byte loads. What would make it fast on sm_90a: TMA (bulk tensor
// copies) into a 3-4 stage shared-memory ring, wgmma over 128xN warpgroup tiles, a persistent
// grid walking the tile list (CUTLASS-style grouped GEMM), 16-byte loads for the gathered rows,
// and the combine fused into the down GEMM's epilogue. See docs/cuda.md.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/expert_stage.h"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kBM = kExpertTileRows;  // rows (positions) per tile
constexpr int kBN = 64;               // output features per tile
constexpr int kBK = 32;               // inputs per step
constexpr int kLdAB = kBK + 8;  // padded shared rows (bf16), keeps WMMA pointers 32-byte aligned
constexpr int kLdC = kBN + 4;   // padded shared rows (fp32) of the epilogue
constexpr int kThreads = 128;   // 4 warps, 2 x 2, each 32 x 32 of the tile

// --- grouping ------------------------------------------------------------------------------

__global__ void count_kernel(const int32_t* __restrict__ experts, int64_t pairs,
                             const int32_t* __restrict__ slot_of_expert, int64_t num_experts,
                             int64_t slots, int32_t* __restrict__ pair_slot,
                             int32_t* __restrict__ counts) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= pairs) return;
  const int32_t e = experts[p];
  int32_t s = e >= 0 && e < num_experts ? slot_of_expert[e] : -1;
  if (s >= slots) s = -1;
  pair_slot[p] = s;
  if (s >= 0) atomicAdd(&counts[s], 1);
}

// Prefix sums over the slots (a few hundred at most: one thread is enough for now).
__global__ void scan_kernel(const int32_t* __restrict__ counts, int64_t slots,
                            int32_t* __restrict__ offsets, int32_t* __restrict__ tile_offsets,
                            int32_t* __restrict__ cursors) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int32_t at = 0, tiles = 0;
  for (int64_t s = 0; s < slots; ++s) {
    offsets[s] = at;
    cursors[s] = at;
    tile_offsets[s] = tiles;
    at += counts[s];
    tiles += (counts[s] + kBM - 1) / kBM;
  }
  offsets[slots] = at;
  tile_offsets[slots] = tiles;
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

// --- grouped GEMM ----------------------------------------------------------------------------

struct GemmArgs {
  // A rows by position: gathered from x (fp32, row perm[pos] / top_k) when x is set, else a.
  const float* x = nullptr;
  const int32_t* perm = nullptr;
  int64_t top_k = 1;
  const __nv_bfloat16* a = nullptr;  // [positions, k_in]
  // Per slot weights [slots, n_out, k_in]; b1 only for the SwiGLU variant.
  const __nv_bfloat16* b0 = nullptr;
  const __nv_bfloat16* b1 = nullptr;
  int64_t n_out = 0, k_in = 0;
  const int32_t* counts = nullptr;
  const int32_t* offsets = nullptr;
  const int32_t* tile_offsets = nullptr;
  int64_t slots = 0;
  __nv_bfloat16* out_bf16 = nullptr;  // SwiGLU: [positions, n_out]
  float* out_f32 = nullptr;           // plain: [positions, n_out]
};

template <int kB>
struct GemmSmem {
  static constexpr size_t kLoadBytes = sizeof(__nv_bfloat16) * (kBM + kB * kBN) * kLdAB;
  static constexpr size_t kEpilogueBytes = sizeof(float) * kB * kBM * kLdC;
  static constexpr size_t kBytes = kLoadBytes > kEpilogueBytes ? kLoadBytes : kEpilogueBytes;
};

// One block: one tile of one slot's positions times one kBN-column block of that slot's weights.
// kSwiGlu: two weight matrices (gate, up) and out = silu(gate) * up in bf16; else out in fp32.
template <bool kSwiGlu>
__global__ void __launch_bounds__(kThreads) grouped_gemm_kernel(const GemmArgs g) {
  using namespace nvcuda;
  constexpr int kB = kSwiGlu ? 2 : 1;
  __shared__ alignas(128) unsigned char smem[GemmSmem<kB>::kBytes];
  __shared__ int64_t row_src[kBM];  // element offset of each tile row's source, -1 past the end

  const int32_t tile = static_cast<int32_t>(blockIdx.x);
  if (tile >= g.tile_offsets[g.slots]) return;  // the grid is an upper bound
  int64_t lo = 0, hi = g.slots;                 // tile_offsets[lo] <= tile < tile_offsets[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (g.tile_offsets[mid] <= tile)
      lo = mid;
    else
      hi = mid;
  }
  const int64_t slot = lo;
  const int32_t m0 = (tile - g.tile_offsets[slot]) * kBM;
  const int32_t rows = min(kBM, g.counts[slot] - m0);
  const int64_t pos0 = g.offsets[slot] + m0;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kBN;
  const int64_t K = g.k_in, N = g.n_out;
  for (int r = threadIdx.x; r < kBM; r += kThreads) {
    if (r >= rows)
      row_src[r] = -1;
    else if (g.x)
      row_src[r] = static_cast<int64_t>(g.perm[pos0 + r] / g.top_k) * K;
    else
      row_src[r] = (pos0 + r) * K;
  }
  const __nv_bfloat16* b[kB];
  b[0] = g.b0 + slot * N * K;
  if constexpr (kSwiGlu) b[1] = g.b1 + slot * N * K;

  auto* as = reinterpret_cast<__nv_bfloat16*>(smem);
  auto* bs = as + kBM * kLdAB;  // kB matrices of kBN x kLdAB
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kB][2][2];
#pragma unroll
  for (int m = 0; m < kB; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[m][i][j], 0.0f);
  __syncthreads();

  const __nv_bfloat16 zero = __float2bfloat16(0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    for (int i = threadIdx.x; i < kBM * kBK; i += kThreads) {
      const int r = i / kBK, c = i % kBK;
      const int64_t src = row_src[r], gk = k0 + c;
      __nv_bfloat16 v = zero;
      if (src >= 0 && gk < K) v = g.x ? __float2bfloat16(g.x[src + gk]) : g.a[src + gk];
      as[r * kLdAB + c] = v;
    }
#pragma unroll
    for (int m = 0; m < kB; ++m)
      for (int i = threadIdx.x; i < kBN * kBK; i += kThreads) {
        const int r = i / kBK, c = i % kBK;
        const int64_t gn = n0 + r, gk = k0 + c;
        bs[(m * kBN + r) * kLdAB + c] = gn < N && gk < K ? b[m][gn * K + gk] : zero;
      }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        wmma::load_matrix_sync(fa[i], as + (wm * 32 + i * 16) * kLdAB + kk, kLdAB);
#pragma unroll
      for (int m = 0; m < kB; ++m) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          // W is [N, K] row-major: as the K x N operand it is column-major with ld kLdAB.
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
          wmma::load_matrix_sync(fb, bs + (m * kBN + wn * 32 + j * 16) * kLdAB + kk, kLdAB);
#pragma unroll
          for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[m][i][j], fa[i], fb, acc[m][i][j]);
        }
      }
    }
    __syncthreads();
  }

  // Epilogue through shared memory (the load buffers are free after the last barrier).
  auto* cs = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int m = 0; m < kB; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(cs + m * kBM * kLdC + (wm * 32 + i * 16) * kLdC + wn * 32 + j * 16,
                                acc[m][i][j], kLdC, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < kBM * kBN; i += kThreads) {
    const int r = i / kBN, c = i % kBN;
    const int64_t gn = n0 + c;
    if (r >= rows || gn >= N) continue;
    const int64_t at = (pos0 + r) * N + gn;
    if constexpr (kSwiGlu) {
      const float gate = cs[r * kLdC + c], up = cs[kBM * kLdC + r * kLdC + c];
      g.out_bf16[at] = __float2bfloat16(gate / (1.0f + expf(-gate)) * up);
    } else {
      g.out_f32[at] = cs[r * kLdC + c];
    }
  }
}

// --- combine ---------------------------------------------------------------------------------

__global__ void combine_kernel(const float* __restrict__ expert_out,
                               const int32_t* __restrict__ pos_of_pair,
                               const float* __restrict__ weights, int64_t top_k, int64_t hidden,
                               float* __restrict__ out) {
  const int64_t row = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= hidden) return;
  float sum = 0.0f;
  for (int64_t j = 0; j < top_k; ++j) {
    const int32_t pos = pos_of_pair[row * top_k + j];
    if (pos >= 0) sum += weights[row * top_k + j] * expert_out[pos * hidden + c];
  }
  out[row * hidden + c] = sum;
}

template <class T>
T* at(void* workspace, size_t offset) {
  return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + offset);
}

void check_workspace(const ExpertLayerView& w, int64_t pairs, const void* workspace,
                     size_t workspace_bytes) {
  const size_t need = expert_workspace_layout(pairs, w.slots, w.hidden, w.inter).bytes;
  if (workspace_bytes < need)
    throw std::invalid_argument("expert_stage: workspace of " + std::to_string(workspace_bytes) +
                                " bytes, " + std::to_string(need) + " needed");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    throw std::invalid_argument("expert_stage: workspace not 256-byte aligned");
}

unsigned blocks_for(int64_t items, int threads) {
  return static_cast<unsigned>((items + threads - 1) / threads);
}

}  // namespace

ExpertLayer::ExpertLayer(int64_t num_experts, int64_t hidden, int64_t inter,
                         const std::vector<HostExpert>& held) {
  if (num_experts <= 0 || hidden <= 0 || inter <= 0)
    throw std::invalid_argument("ExpertLayer: non-positive shape");
  std::vector<int32_t> slot_of(num_experts, -1);
  for (size_t i = 0; i < held.size(); ++i) {
    const int32_t e = held[i].expert;
    if (e < 0 || e >= num_experts || slot_of[e] >= 0)
      throw std::invalid_argument("ExpertLayer: expert " + std::to_string(e) +
                                  " out of range or given twice");
    slot_of[e] = static_cast<int32_t>(i);
  }
  const int64_t slots = static_cast<int64_t>(held.size());
  const size_t matrix = static_cast<size_t>(hidden * inter) * sizeof(uint16_t);
  bytes_ = 3 * slots * matrix + static_cast<size_t>(num_experts) * sizeof(int32_t);
  MOEFLOW_CUDA_CHECK(cudaMalloc(&weights_, bytes_));
  auto* base = static_cast<unsigned char*>(weights_);
  unsigned char* gate = base;
  unsigned char* up = gate + slots * matrix;
  unsigned char* down = up + slots * matrix;
  unsigned char* map = down + slots * matrix;
  try {
    for (int64_t s = 0; s < slots; ++s) {
      MOEFLOW_CUDA_CHECK(
          cudaMemcpy(gate + s * matrix, held[s].gate, matrix, cudaMemcpyHostToDevice));
      MOEFLOW_CUDA_CHECK(cudaMemcpy(up + s * matrix, held[s].up, matrix, cudaMemcpyHostToDevice));
      MOEFLOW_CUDA_CHECK(
          cudaMemcpy(down + s * matrix, held[s].down, matrix, cudaMemcpyHostToDevice));
    }
    MOEFLOW_CUDA_CHECK(
        cudaMemcpy(map, slot_of.data(), slot_of.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  } catch (...) {
    cudaFree(weights_);
    throw;
  }
  view_.gate = reinterpret_cast<const uint16_t*>(gate);
  view_.up = reinterpret_cast<const uint16_t*>(up);
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
                  size_t workspace_bytes, cudaStream_t stream) {
  check_workspace(w, pairs, workspace, workspace_bytes);
  const ExpertWorkspaceLayout l = expert_workspace_layout(pairs, w.slots, w.hidden, w.inter);
  auto* counts = at<int32_t>(workspace, l.counts);
  auto* cursors = at<int32_t>(workspace, l.cursors);
  auto* pair_slot = at<int32_t>(workspace, l.pair_slot);
  if (w.slots > 0)
    MOEFLOW_CUDA_CHECK(cudaMemsetAsync(counts, 0, w.slots * sizeof(int32_t), stream));
  if (pairs > 0) {
    count_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(
        experts, pairs, w.slot_of_expert, w.num_experts, w.slots, pair_slot, counts);
    MOEFLOW_CUDA_CHECK_LAUNCH("count_kernel");
  }
  scan_kernel<<<1, 32, 0, stream>>>(counts, w.slots, at<int32_t>(workspace, l.offsets),
                                    at<int32_t>(workspace, l.tile_offsets), cursors);
  MOEFLOW_CUDA_CHECK_LAUNCH("scan_kernel");
  if (pairs > 0) {
    scatter_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(
        pair_slot, pairs, cursors, at<int32_t>(workspace, l.perm),
        at<int32_t>(workspace, l.pos_of_pair));
    MOEFLOW_CUDA_CHECK_LAUNCH("scatter_kernel");
  }
}

void expert_stage(const ExpertLayerView& w, const float* x, int64_t n, int64_t top_k,
                  const int32_t* experts, const float* weights, float* out, void* workspace,
                  size_t workspace_bytes, cudaStream_t stream) {
  if (n < 0 || top_k < 1 || w.hidden <= 0 || w.inter <= 0 || w.slots < 0)
    throw std::invalid_argument("expert_stage: bad shape");
  if (n == 0) return;
  const int64_t pairs = n * top_k;
  expert_group(w, pairs, experts, workspace, workspace_bytes, stream);
  const ExpertWorkspaceLayout l = expert_workspace_layout(pairs, w.slots, w.hidden, w.inter);
  auto* activations = at<__nv_bfloat16>(workspace, l.activations);
  auto* expert_out = at<float>(workspace, l.expert_out);
  const int64_t tiles = expert_tiles_max(pairs, w.slots);
  if (tiles > 0) {
    GemmArgs g;
    g.perm = at<int32_t>(workspace, l.perm);
    g.top_k = top_k;
    g.counts = at<int32_t>(workspace, l.counts);
    g.offsets = at<int32_t>(workspace, l.offsets);
    g.tile_offsets = at<int32_t>(workspace, l.tile_offsets);
    g.slots = w.slots;

    GemmArgs up = g;
    up.x = x;
    up.b0 = reinterpret_cast<const __nv_bfloat16*>(w.gate);
    up.b1 = reinterpret_cast<const __nv_bfloat16*>(w.up);
    up.n_out = w.inter;
    up.k_in = w.hidden;
    up.out_bf16 = activations;
    const dim3 up_grid(static_cast<unsigned>(tiles), blocks_for(w.inter, kBN));
    grouped_gemm_kernel<true><<<up_grid, kThreads, 0, stream>>>(up);
    MOEFLOW_CUDA_CHECK_LAUNCH("grouped_gemm_kernel<swiglu>");

    GemmArgs down = g;
    down.a = activations;
    down.b0 = reinterpret_cast<const __nv_bfloat16*>(w.down);
    down.n_out = w.hidden;
    down.k_in = w.inter;
    down.out_f32 = expert_out;
    const dim3 down_grid(static_cast<unsigned>(tiles), blocks_for(w.hidden, kBN));
    grouped_gemm_kernel<false><<<down_grid, kThreads, 0, stream>>>(down);
    MOEFLOW_CUDA_CHECK_LAUNCH("grouped_gemm_kernel<down>");
  }
  const dim3 combine_grid(static_cast<unsigned>(n), blocks_for(w.hidden, 256));
  combine_kernel<<<combine_grid, 256, 0, stream>>>(
      expert_out, at<int32_t>(workspace, l.pos_of_pair), weights, top_k, w.hidden, out);
  MOEFLOW_CUDA_CHECK_LAUNCH("combine_kernel");
}

}  // namespace moeflow::kernels::cuda
