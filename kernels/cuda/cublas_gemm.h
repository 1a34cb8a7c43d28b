#pragma once
// The one GEMM shape the expert stage needs, on cuBLAS: out[rows, n_out] = a[rows, k] · w[n_out,
// k]ᵀ, row-major, bf16 operands, fp32 accumulation (CUBLAS_COMPUTE_32F), bf16 or fp32 out
// (see kernels/cuda/cublas_layout.h for the mapping onto column-major). Built with CUDA only.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/cublas_api.h"

namespace moeflow::kernels::cuda {

enum class GemmOut { bf16, f32 };

// Asynchronous on `stream` (device pointers; a and w bf16 bit patterns). `what` and, when >= 0,
// `index` name the call in errors ("gate_up slot 3"); the message adds the shape and cuBLAS's
// status. Builds no strings unless it fails (it runs per expert, per layer, per step).
void gemm_rows_by_weights(const CublasHandle& blas, const uint16_t* a, const uint16_t* w, void* out,
                          GemmOut out_type, int64_t rows, int64_t n_out, int64_t k,
                          cudaStream_t stream, const char* what, int64_t index = -1);

}  // namespace moeflow::kernels::cuda
