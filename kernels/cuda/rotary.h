#pragma once
// Rotary embedding on the GPU, the rule of kernels/cpu/ops.h (rope_rotate_half): the "rotate
// half" layout of HF Llama/Mixtral/Qwen2/OLMoE/DeepSeek. In each head, pairs (i, i + head_dim/2)
// rotate by angle = float(position) * inv_freq[i], cos and sin in fp32 (cosf/sinf, as the CPU's
// std::cos/std::sin of a float). inv_freq is the CPU's table (kernels::rope_inv_freq, computed
// once on the host and uploaded), so both sides rotate by the same fp32 frequencies. Full
// rotary only (model_config.cpp refuses partial rotary and scaled rope types).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/router_kernel_args.h"

namespace moeflow::kernels::cuda {

// Rotates q and k in place, in one launch (one block per row, cos/sin computed once per row).
// Row r of both is at positions[r] (int32, [rows]); inv_freq: [head_dim / 2] fp32. All device
// pointers. A tensor with heads == 0 is skipped. Throws std::invalid_argument on bad shapes
// before any device call (check_rotary_args), std::runtime_error when the launch fails.
// Asynchronous on `stream`.
void rope_rotate_half(const RotaryTensor& q, const RotaryTensor& k, int64_t rows, int64_t head_dim,
                      const int32_t* positions, const float* inv_freq, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
