#include "kernels/cuda/cublas_layout.h"

#include <climits>
#include <stdexcept>

namespace moeflow::kernels::cuda {

ColumnMajorGemm rows_by_weights_gemm(int64_t rows, int64_t n_out, int64_t k, const char* what) {
  auto fits = [](int64_t v) { return v >= 1 && v <= INT_MAX; };
  if (!fits(rows) || !fits(n_out) || !fits(k))
    throw std::invalid_argument(std::string(what) + ": GEMM shape rows " + std::to_string(rows) +
                                ", n_out " + std::to_string(n_out) + ", k " + std::to_string(k) +
                                " outside [1, INT_MAX]");
  ColumnMajorGemm g;
  g.transpose_a = true;
  g.transpose_b = false;
  g.m = static_cast<int>(n_out);
  g.n = static_cast<int>(rows);
  g.k = static_cast<int>(k);
  g.lda = static_cast<int>(k);
  g.ldb = static_cast<int>(k);
  g.ldc = static_cast<int>(n_out);
  return g;
}

}  // namespace moeflow::kernels::cuda
