// The small-batch expert stage: a device grouping in one block, two GEMV kernels that stream
// each touched expert's weights once per pass, and the shared combine. See expert_small_batch.h
// for the steps and expert_plan.h (kSmallBatchPairsMax) for the limit.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/expert_combine.h"
#include "kernels/cuda/expert_rounding.cuh"
#include "kernels/cuda/expert_small_batch.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kPrepareThreads = 128;  // a row's conversion; block 0's threads are the pairs too
constexpr int kGemvWarps = 8;
constexpr int kGemvThreads = 32 * kGemvWarps;
// Weight rows per warp: each input load feeds 4 rows' FMAs (for gate_up: gate i, up i, gate
// i + 1, up i + 1 - a gate and its up stay in one warp for the SwiGLU).
constexpr int kRowsPerWarp = 4;
// Pairs per pass over a warp's rows: 4 x 8 fp32 accumulators in registers. A slot with more
// pairs takes more passes, run by other warps of the same block at the same time, so the
// repeated weight reads mostly hit L1/L2 rather than HBM.
constexpr int kPairsPerPass = 8;
constexpr int kRowsPerBlock = kGemvWarps * kRowsPerWarp;
static_assert(kPrepareThreads >= kSmallBatchPairsMax, "one grouping thread per pair");
static_assert(kRowsPerWarp % 2 == 0, "gate and up rows come in pairs");

// --- prepare: x -> bf16 (every block, one row each); the grouping (block 0) --------------------
// Block 0's thread p owns pair p. Positions are those of group_pairs: held pairs sorted by slot,
// in pair order within a slot - computed by counting (pairs <= 64: O(pairs²) shared-memory
// reads, no atomics, deterministic).
template <bool kVec>
__global__ void __launch_bounds__(kPrepareThreads)
    small_batch_prepare_kernel(const float* __restrict__ x, int64_t hidden,
                               __nv_bfloat16* __restrict__ rows_bf16,
                               const int32_t* __restrict__ experts, int pairs,
                               const int32_t* __restrict__ slot_of_expert, int64_t num_experts,
                               int64_t slots, int32_t* __restrict__ expert_pairs,
                               int32_t* __restrict__ pos_of_pair, int32_t* __restrict__ perm,
                               int32_t* __restrict__ group_slot, int32_t* __restrict__ group_start,
                               int32_t* __restrict__ group_count) {
  const int64_t row = blockIdx.x;
  detail::row_to_bf16<kVec, kPrepareThreads>(x + row * hidden, true, hidden,
                                             rows_bf16 + row * hidden);
  if (blockIdx.x != 0) return;

  __shared__ int32_t s_slot[kSmallBatchPairsMax];   // each pair's slot, -1 when not held
  __shared__ int32_t s_first[kSmallBatchPairsMax];  // 1: the first pair of its slot
  const int p = threadIdx.x;
  int32_t slot = -1;
  if (p < pairs) {
    const int32_t e = experts[p];
    if (slots > 0 && e >= 0 && e < num_experts) slot = slot_of_expert[e];
    if (slot < 0 || slot >= slots) slot = -1;
    if (slot >= 0 && expert_pairs) atomicAdd(&expert_pairs[e], 1);
  }
  if (p < kSmallBatchPairsMax) s_slot[p] = slot;
  __syncthreads();
  if (p < kSmallBatchPairsMax) {
    bool first = slot >= 0;
    for (int q = 0; q < p && first; ++q) first = s_slot[q] != slot;
    s_first[p] = first ? 1 : 0;
  }
  __syncthreads();
  if (p < pairs) {
    int32_t pos = -1;
    if (slot >= 0) {
      int32_t below = 0, same_before = 0, rank = 0;
      for (int q = 0; q < pairs; ++q) {
        const int32_t s = s_slot[q];
        if (s < 0) continue;
        below += s < slot;                    // pairs of lower slots come first
        same_before += s == slot && q < p;    // this slot's pairs before p
        rank += s_first[q] != 0 && s < slot;  // touched slots below this one
      }
      pos = below + same_before;
      perm[pos] = p;
      if (s_first[p]) {
        group_slot[rank] = slot;
        group_start[rank] = below;
      }
    }
    pos_of_pair[p] = pos;
  }
  if (p == 0) {
    int32_t groups = 0, held = 0;
    for (int q = 0; q < pairs; ++q) {
      groups += s_first[q];
      held += s_slot[q] >= 0;
    }
    group_count[0] = groups;
    group_start[groups] = held;
  }
}

// --- GEMV: out[pos, row] = weights[slot][row, :] · input_of(pos) --------------------------------

// 8 bf16 (one 16-byte load) -> fp32, exactly (a bf16 is the high half of its fp32).
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    f[2 * k] = __uint_as_float(words[k] << 16);  // the lower address is the low half
    f[2 * k + 1] = __uint_as_float(words[k] & 0xffff0000u);
  }
}

// acc[r][j] += this lane's share of w_row[r] · in[j] over [0, cols), for j < np. kCols = 8:
// 16-byte loads, lane l reads columns [8 l, 8 l + 8) of each 256 (cols % 8 == 0, rows 16-byte
// aligned); kCols = 1: one column per lane of each 32.
template <int kCols>
__device__ __forceinline__ void gemv_columns(const __nv_bfloat16* const (&w_row)[kRowsPerWarp],
                                             const __nv_bfloat16* const (&in)[kPairsPerPass],
                                             int np, int64_t cols, int lane,
                                             float (&acc)[kRowsPerWarp][kPairsPerPass]) {
#pragma unroll 2
  for (int64_t c = static_cast<int64_t>(lane) * kCols; c < cols; c += 32 * kCols) {
    float wf[kRowsPerWarp][kCols];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if constexpr (kCols == 8)
        unpack8(__ldg(reinterpret_cast<const uint4*>(w_row[r] + c)), wf[r]);
      else
        wf[r][0] = __bfloat162float(w_row[r][c]);
    }
#pragma unroll
    for (int j = 0; j < kPairsPerPass; ++j) {
      if (j >= np) break;
      float xf[kCols];
      if constexpr (kCols == 8)
        unpack8(__ldg(reinterpret_cast<const uint4*>(in[j] + c)), xf);
      else
        xf[0] = __bfloat162float(in[j][c]);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
        for (int k = 0; k < kCols; ++k) acc[r][j] = fmaf(wf[r][k], xf[k], acc[r][j]);
    }
  }
}

enum class GemvStage { gate_up, down };

// Grid: x over the slot's weight rows (kRowsPerBlock per block), y over the touched slots
// (group_slot; blocks past group_count leave at once). Each warp takes (row group, pass) work
// items, pass-minor, so a slot with many pairs has several warps on the same rows together.
//   gate_up: weights [slots, 2 * inter, hidden] (rows = 2 * inter, cols = hidden), input = the
//            bf16 rows of x (pair / top_k), act_out [positions, inter] bf16 =
//            bf16(silu(bf16(gate)) * bf16(up))
//   down:    weights [slots, hidden, inter] (rows = hidden, cols = inter), input = act_out's
//            rows by position, expert_out [positions, hidden] fp32
template <GemvStage kStage, int kCols>
__global__ void __launch_bounds__(kGemvThreads, 2)
    small_batch_gemv_kernel(const __nv_bfloat16* __restrict__ weights, int64_t rows, int64_t cols,
                            const __nv_bfloat16* __restrict__ input, int64_t top_k,
                            const int32_t* __restrict__ perm,
                            const int32_t* __restrict__ group_slot,
                            const int32_t* __restrict__ group_start,
                            const int32_t* __restrict__ group_count,
                            __nv_bfloat16* __restrict__ act_out, float* __restrict__ expert_out) {
  const int group = blockIdx.y;
  if (group >= group_count[0]) return;  // the whole block: fewer slots touched than the grid
  const int64_t slot = group_slot[group];
  const int32_t first = group_start[group];
  const int count = group_start[group + 1] - first;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int passes = (count + kPairsPerPass - 1) / kPairsPerPass;
  const __nv_bfloat16* w_slot = weights + slot * rows * cols;

  for (int item = warp; item < kGemvWarps * passes; item += kGemvWarps) {
    const int row_group = item / passes, pass = item % passes;
    const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kGemvWarps + row_group) * kRowsPerWarp;
    if (row0 >= rows) continue;  // the last block's spare warps (warp-uniform)
    const int np = min(kPairsPerPass, count - pass * kPairsPerPass);
    int32_t pos[kPairsPerPass];
    const __nv_bfloat16* in[kPairsPerPass];
#pragma unroll
    for (int j = 0; j < kPairsPerPass; ++j) {
      pos[j] = first + pass * kPairsPerPass + min(j, np - 1);  // spare j: a valid row, unused
      const int64_t in_row = kStage == GemvStage::gate_up ? perm[pos[j]] / top_k : pos[j];
      in[j] = input + in_row * cols;
    }
    const __nv_bfloat16* w_row[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) w_row[r] = w_slot + min(row0 + r, rows - 1) * cols;

    float acc[kRowsPerWarp][kPairsPerPass];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int j = 0; j < kPairsPerPass; ++j) acc[r][j] = 0.0f;
    gemv_columns<kCols>(w_row, in, np, cols, lane, acc);

#pragma unroll
    for (int j = 0; j < kPairsPerPass; ++j) {
      if (j >= np) break;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) acc[r][j] = detail::warp_sum(acc[r][j]);
      if (lane != j) continue;  // every lane has the sums; lane j writes pair j
      if constexpr (kStage == GemvStage::gate_up) {
        const int64_t inter = rows / 2;
#pragma unroll
        for (int q = 0; q < kRowsPerWarp / 2; ++q) {
          const int64_t i = row0 / 2 + q;
          if (i >= inter) break;
          const float gate = detail::round_to_bf16(acc[2 * q][j]);
          const float up = detail::round_to_bf16(acc[2 * q + 1][j]);
          act_out[pos[j] * inter + i] = __float2bfloat16_rn(detail::swiglu(gate, up));
        }
      } else {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
          if (row0 + r < rows) expert_out[pos[j] * rows + row0 + r] = acc[r][j];
      }
    }
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

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("expert_stage_small_batch: " + what);
}

template <GemvStage kStage>
void launch_gemv(const __nv_bfloat16* weights, int64_t rows, int64_t cols,
                 const __nv_bfloat16* input, int64_t top_k, const SmallBatchWorkspaceLayout& l,
                 void* workspace, unsigned touched_max, cudaStream_t stream) {
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  require(blocks <= INT_MAX, "weight rows " + std::to_string(rows) + " beyond the grid");
  const dim3 grid(static_cast<unsigned>(blocks), touched_max);
  // Vector loads need whole 16-byte rows: cols % 8 == 0 and 16-byte aligned bases (the
  // workspace's regions are 256-byte aligned).
  const bool vec = cols % 8 == 0 && aligned16(weights);
  // Each stage gets only its own output (the down stage reads the activations as its input).
  auto* act = kStage == GemvStage::gate_up ? at<__nv_bfloat16>(workspace, l.activations) : nullptr;
  auto* expert_out = kStage == GemvStage::down ? at<float>(workspace, l.expert_out) : nullptr;
  const auto* perm = at<const int32_t>(workspace, l.perm);
  const auto* group_slot = at<const int32_t>(workspace, l.group_slot);
  const auto* group_start = at<const int32_t>(workspace, l.group_start);
  const auto* group_count = at<const int32_t>(workspace, l.group_count);
  if (vec)
    small_batch_gemv_kernel<kStage, 8>
        <<<grid, kGemvThreads, 0, stream>>>(weights, rows, cols, input, top_k, perm, group_slot,
                                            group_start, group_count, act, expert_out);
  else
    small_batch_gemv_kernel<kStage, 1>
        <<<grid, kGemvThreads, 0, stream>>>(weights, rows, cols, input, top_k, perm, group_slot,
                                            group_start, group_count, act, expert_out);
  MOEFLOW_CUDA_CHECK_LAUNCH(kStage == GemvStage::gate_up ? "small_batch_gemv_kernel gate_up"
                                                         : "small_batch_gemv_kernel down");
}

}  // namespace

void expert_stage_small_batch(const ExpertLayerView& w, const float* x, int64_t n, int64_t top_k,
                              const int32_t* experts, const float* weights, float* out,
                              void* workspace, size_t workspace_bytes, int32_t* expert_pairs,
                              cudaStream_t stream) {
  const SmallBatchWorkspaceLayout l = plan_small_batch_stage(
      w.num_experts, w.slots, w.hidden, w.inter, n, top_k, workspace, workspace_bytes);
  if (n == 0) return;
  require(x && experts && weights && out, "null x, experts, weights or out");
  require(w.slots == 0 || (w.gate_up && w.down && w.slot_of_expert),
          "null expert weights or slot map for " + std::to_string(w.slots) + " slots");
  require(2 * w.inter <= INT_MAX && w.hidden <= INT_MAX,
          "hidden " + std::to_string(w.hidden) + " or 2 * inter " + std::to_string(2 * w.inter) +
              " beyond the int range");
  const int64_t H = w.hidden, I = w.inter, pairs = n * top_k;  // pairs <= 64 (planned)
  auto* rows_bf16 = at<__nv_bfloat16>(workspace, l.rows_bf16);
  auto* pos_of_pair = at<int32_t>(workspace, l.pos_of_pair);

  const auto rows = static_cast<unsigned>(n);
  const bool vec = H % 8 == 0 && aligned16(x);
  auto prepare = vec ? small_batch_prepare_kernel<true> : small_batch_prepare_kernel<false>;
  prepare<<<rows, kPrepareThreads, 0, stream>>>(
      x, H, rows_bf16, experts, static_cast<int>(pairs), w.slot_of_expert, w.num_experts, w.slots,
      expert_pairs, pos_of_pair, at<int32_t>(workspace, l.perm),
      at<int32_t>(workspace, l.group_slot), at<int32_t>(workspace, l.group_start),
      at<int32_t>(workspace, l.group_count));
  MOEFLOW_CUDA_CHECK_LAUNCH("small_batch_prepare_kernel");

  if (w.slots > 0) {
    // At most min(slots, pairs) slots are touched: the grid's y.
    const auto touched_max = static_cast<unsigned>(std::min(w.slots, pairs));
    launch_gemv<GemvStage::gate_up>(reinterpret_cast<const __nv_bfloat16*>(w.gate_up), 2 * I, H,
                                    rows_bf16, top_k, l, workspace, touched_max, stream);
    launch_gemv<GemvStage::down>(reinterpret_cast<const __nv_bfloat16*>(w.down), H, I,
                                 at<const __nv_bfloat16>(workspace, l.activations), top_k, l,
                                 workspace, touched_max, stream);
  }
  // Positions lie in [0, held pairs) <= pairs; pairs not held are -1 in pos_of_pair.
  expert_combine(at<const float>(workspace, l.expert_out), pos_of_pair, weights, n, top_k, H, pairs,
                 out, stream);
}

}  // namespace moeflow::kernels::cuda
