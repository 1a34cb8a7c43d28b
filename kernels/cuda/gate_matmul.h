#pragma once
// The router gate on the GPU: logits[rows, experts] = x[rows, hidden] · Wᵀ, W [experts, hidden]
// fp32 (as model/weights.h keeps the router gate) or bf16 (converted in registers, exactly as the
// CPU's kernels::matmul does), fp32 accumulation. A memory-bound GEMV for few rows: one warp per
// expert reads its weight row once per tile of up to 8 rows of x.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/router_kernel_args.h"

namespace moeflow::kernels::cuda {

// x: [rows, w.cols] fp32; w.data: [w.rows, w.cols] device pointer; logits: [rows, w.rows] fp32.
// All device pointers. Throws std::invalid_argument on bad shapes before any device call
// (check_gate_matmul_args), std::runtime_error when the launch fails. Asynchronous on `stream`.
void gate_matmul(const float* x, int64_t rows, const Matrix& w, float* logits, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
