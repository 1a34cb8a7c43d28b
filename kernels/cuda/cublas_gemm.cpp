#include "kernels/cuda/cublas_gemm.h"

#include "kernels/cuda/cublas_layout.h"

namespace moeflow::kernels::cuda {

void gemm_rows_by_weights(const CublasHandle& blas, const uint16_t* a, const uint16_t* w, void* out,
                          GemmOut out_type, int64_t rows, int64_t n_out, int64_t k,
                          cudaStream_t stream, const std::string& what) {
  const ColumnMajorGemm g = rows_by_weights_gemm(rows, n_out, k, what);
  const CublasApi& api = blas.api();
  const std::string call = "cublasGemmEx(" + what + ": rows " + std::to_string(rows) + ", n_out " +
                           std::to_string(n_out) + ", k " + std::to_string(k) +
                           (out_type == GemmOut::bf16 ? ", bf16 out)" : ", fp32 out)");
  blas.check(api.set_stream(blas.get(), stream), "cublasSetStream for " + call);
  // Host pointer mode (the default): alpha and beta are read before the call returns.
  const float alpha = 1.0f, beta = 0.0f;
  blas.check(api.gemm_ex(blas.get(), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                         g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha, w,
                         CUDA_R_16BF, g.lda, a, CUDA_R_16BF, g.ldb, &beta, out,
                         out_type == GemmOut::bf16 ? CUDA_R_16BF : CUDA_R_32F, g.ldc,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             call);
}

}  // namespace moeflow::kernels::cuda
