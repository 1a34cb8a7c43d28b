// The row-major to column-major mapping of the expert stage's GEMMs (kernels/cuda/cublas_layout.h),
// checked by running the column-major arguments through a reference column-major GEMM on the host:
// if the arguments are right, it computes the row-major product. Runs in every build.
#include "kernels/cuda/cublas_layout.h"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace moeflow::kernels::cuda {
namespace {

// C = op(A) · op(B), column-major with leading dimensions, as cuBLAS defines it.
void column_major_gemm(const ColumnMajorGemm& g, const std::vector<float>& a,
                       const std::vector<float>& b, std::vector<float>& c) {
  for (int i = 0; i < g.m; ++i)
    for (int j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int p = 0; p < g.k; ++p) {
        const float av = g.transpose_a ? a[p + i * g.lda] : a[i + p * g.lda];
        const float bv = g.transpose_b ? b[j + p * g.ldb] : b[p + j * g.ldb];
        sum += static_cast<double>(av) * bv;
      }
      c[i + j * g.ldc] = static_cast<float>(sum);
    }
}

TEST(CublasLayout, ColumnMajorArgumentsComputeTheRowMajorProduct) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const std::vector<std::tuple<int, int, int>> shapes = {
      {1, 5, 3}, {7, 4, 9}, {3, 1, 1}, {6, 10, 2}};
  for (const auto& [rows, n_out, k] : shapes) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(n_out) + "x" + std::to_string(k));
    std::vector<float> x(rows * k), w(n_out * k);  // row-major [rows, k] and [n_out, k]
    for (float& v : x) v = u(rng);
    for (float& v : w) v = u(rng);
    const ColumnMajorGemm g = rows_by_weights_gemm(rows, n_out, k, "test");
    EXPECT_TRUE(g.transpose_a);
    EXPECT_FALSE(g.transpose_b);
    std::vector<float> out(rows * n_out, NAN);
    column_major_gemm(g, w, x, out);  // cuBLAS's A is the weights, B the rows
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < n_out; ++o) {
        double want = 0.0;
        for (int p = 0; p < k; ++p) want += static_cast<double>(x[r * k + p]) * w[o * k + p];
        EXPECT_NEAR(out[r * n_out + o], want, 1e-5) << r << "," << o;  // row-major [rows, n_out]
      }
  }
}

TEST(CublasLayout, RefusesShapesCublasCannotTake) {
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes = {
      {0, 4, 4}, {4, 0, 4}, {4, 4, -1}, {int64_t{INT_MAX} + 1, 4, 4}, {4, int64_t{1} << 40, 4}};
  for (const auto& [rows, n_out, k] : shapes) {
    try {
      rows_by_weights_gemm(rows, n_out, k, "down slot 3");
      ADD_FAILURE() << rows << " " << n_out << " " << k << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("down slot 3"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace moeflow::kernels::cuda
