#pragma once
// The last step of both GPU expert paths (expert_stage.h, expert_small_batch.h): each row's
// weighted sum of its held choices' expert outputs, in choice order (deterministic).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moeflow::kernels::cuda {

// out[row] = sum over j in [0, top_k), in order, of weights[row, j] * expert_out[pos_of_pair[row,
// j]] over the choices whose position lies in [0, positions) - the others are not held; a row
// with none gets zeros. expert_out: [positions, hidden] fp32; pos_of_pair, weights: [n, top_k];
// out: [n, hidden] fp32, overwritten. All device pointers. Asynchronous on `stream`; throws
// std::invalid_argument for a bad shape or null pointer (before any device work),
// std::runtime_error when the launch fails. n * top_k and n must fit an int.
void expert_combine(const float* expert_out, const int32_t* pos_of_pair, const float* weights,
                    int64_t n, int64_t top_k, int64_t hidden, int64_t positions, float* out,
                    cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
