#pragma once
// The small memory-bound steps of the router stage on the GPU, each the rule of its CPU
// counterpart in kernels/cpu/ops.h (or model/router_stage.cpp where it is inline there):
// embedding gather, fp32 -> bf16 for the GEMMs' A operand, bias, clamp, residual add, SwiGLU's
// silu(gate) * up, and the shared expert's (sigmoid-gated) add. Plain functions over device
// pointers and a stream; each throws std::invalid_argument naming itself and the argument before
// any device call, std::runtime_error when the launch fails; all asynchronous on `stream`.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moeflow::kernels::cuda {

// out[i, :] = table[tokens[i], :] as fp32. table: [vocab, hidden] bf16 bits; tokens: [n] int32,
// checked on the host by the caller (an id outside [0, vocab) writes a NaN row rather than read
// out of bounds).
void embed_rows_bf16(const uint16_t* table, int64_t vocab, int64_t hidden, const int32_t* tokens,
                     int64_t n, float* out, cudaStream_t stream);

// out[i] = bf16(x[i]), round to nearest even (as kernels::f32_to_bf16).
void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);

// y[r, :] += bias for `rows` rows of `cols` (kernels::add_bias).
void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// x[i] = clamp(x[i], -limit, limit), NaN kept (kernels::clamp, std::clamp). limit > 0.
void clamp_values(float* x, int64_t n, float limit, cudaStream_t stream);

// y[i] += x[i] (the residual adds).
void add_values(float* y, const float* x, int64_t n, cudaStream_t stream);

// out[i] = bf16(silu(gate[i]) * up[i]) in fp32 (kernels::silu_mul), bf16 for the down GEMM.
void silu_mul_to_bf16(const float* gate, const float* up, int64_t n, uint16_t* out,
                      cudaStream_t stream);

// The shared expert's add (model/router_stage.cpp, combine): for each of `rows` rows of width
// `cols`, y[r] += s[r] * x[r] with s[r] = sigmoid(gate_input[r] · gate_weight) when gate_weight
// is given (Qwen2-MoE), else 1 (gate_input may then be null). One block per row.
void gated_add_rows(float* y, const float* x, const float* gate_input, const float* gate_weight,
                    int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
