#pragma once
// Element-wise and row-wise operations of a transformer layer, fp32, row-major [n, d].
#include <cstdint>

namespace moeflow::kernels {

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight. `out` may alias `x`.
void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out);

// Rotary embedding in the "rotate half" layout (HF Llama/Mixtral/Qwen/OLMoE/DeepSeek): for each
// head of `head_dim`, pairs (i, i + head_dim/2) rotate by position * inv_freq[i].
// x is [n, heads * head_dim] with row stride `ld`; positions has n entries.
void rope_rotate_half(float* x, int64_t ld, int64_t n, int64_t heads, int64_t head_dim,
                      const int32_t* positions, const float* inv_freq);

// inv_freq[i] = 1 / theta^(2i / head_dim), computed in fp32 as transformers does.
void rope_inv_freq(int64_t head_dim, double theta, float* inv_freq);

// gate[i] = silu(gate[i]) * up[i], for n elements.
void silu_mul(float* gate, const float* up, int64_t n);

// y[i] += a * x[i]
void axpy(float a, const float* x, float* y, int64_t n);

// y[r, :] += bias for each of n rows of width d.
void add_bias(float* y, const float* bias, int64_t n, int64_t d);

// In-place softmax over each of n rows of width d (max-subtracted, fp32).
void softmax_rows(float* x, int64_t n, int64_t d);

// Clamp every element to [-limit, limit].
void clamp(float* x, int64_t n, float limit);

float sigmoid(float x);

}  // namespace moeflow::kernels
