#pragma once
// How a row-major "rows times weights" product maps onto cuBLAS's column-major GEMM. Plain
// arithmetic, compiled and tested in every build (no CUDA headers).
//
// moeflow keeps activations row-major [rows, k] and weights as Hugging Face stores them,
// row-major [n_out, k]; it wants out[rows, n_out] = a · wᵀ, row-major. Read column-major, a
// row-major [r, c] matrix is its transpose, so out is the column-major [n_out, rows] matrix
// w · aᵀ: cuBLAS's A = w with op T (lda = k), B = a with op N (ldb = k), m = n_out, n = rows,
// ldc = n_out (the "TN" layout, cuBLAS's fastest for bf16).
#include <cstdint>
#include <string>

namespace moeflow::kernels::cuda {

struct ColumnMajorGemm {
  bool transpose_a = false, transpose_b = false;
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
};

// The cuBLAS arguments for out[rows, n_out] = a[rows, k] · w[n_out, k]ᵀ (all row-major and
// contiguous). Throws std::invalid_argument naming `what` and the shape when a dimension is
// below 1 or beyond int.
ColumnMajorGemm rows_by_weights_gemm(int64_t rows, int64_t n_out, int64_t k, const char* what);

}  // namespace moeflow::kernels::cuda
