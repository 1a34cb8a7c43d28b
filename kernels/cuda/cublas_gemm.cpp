#include "kernels/cuda/cublas_gemm.h"

#include <string>

#include "kernels/cuda/cublas_layout.h"

namespace moeflow::kernels::cuda {

namespace {

// "cublasGemmEx(gate_up slot 3: rows 8, n_out 28672, k 4096, bf16 out)", for errors only.
std::string describe(const char* what, int64_t index, int64_t rows, int64_t n_out, int64_t k,
                     GemmOut out_type) {
  return std::string("cublasGemmEx(") + what + (index >= 0 ? " " + std::to_string(index) : "") +
         ": rows " + std::to_string(rows) + ", n_out " + std::to_string(n_out) + ", k " +
         std::to_string(k) + (out_type == GemmOut::bf16 ? ", bf16 out)" : ", fp32 out)");
}

}  // namespace

void gemm_rows_by_weights(const CublasHandle& blas, const uint16_t* a, const uint16_t* w, void* out,
                          GemmOut out_type, int64_t rows, int64_t n_out, int64_t k,
                          cudaStream_t stream, const char* what, int64_t index) {
  const ColumnMajorGemm g = rows_by_weights_gemm(rows, n_out, k, what);
  const CublasApi& api = blas.api();
  cublasStatus_t s = api.set_stream(blas.get(), stream);
  if (s != CUBLAS_STATUS_SUCCESS)
    blas.check(s, "cublasSetStream for " + describe(what, index, rows, n_out, k, out_type));
  // Host pointer mode (the default): alpha and beta are read before the call returns.
  const float alpha = 1.0f, beta = 0.0f;
  s = api.gemm_ex(blas.get(), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                  g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha, w, CUDA_R_16BF,
                  g.lda, a, CUDA_R_16BF, g.ldb, &beta, out,
                  out_type == GemmOut::bf16 ? CUDA_R_16BF : CUDA_R_32F, g.ldc, CUBLAS_COMPUTE_32F,
                  CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) blas.check(s, describe(what, index, rows, n_out, k, out_type));
}

}  // namespace moeflow::kernels::cuda
