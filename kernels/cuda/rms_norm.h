#pragma once
// RMSNorm on the GPU, the rule of kernels/cpu/ops.h: out[r] = x[r] / sqrt(mean(x[r]^2) + eps)
// * weight, eps inside the square root, weight fp32 as the CPU stores it. One block per row; the
// sum of squares is fp32 (the CPU sums in double: expect ~1e-7 relative differences).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/router_kernel_args.h"

namespace moeflow::kernels::cuda {

// x, out: [rows, hidden] fp32; weight: [hidden] fp32. All device pointers; `out` may alias `x`
// (the q/k norm of OLMoE runs in place). Throws std::invalid_argument on bad shapes before any
// device call (check_rms_norm_args), std::runtime_error when the launch fails. Asynchronous on
// `stream`.
void rms_norm(const float* x, const float* weight, int64_t rows, int64_t hidden, float eps,
              float* out, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
