#pragma once
// y = x · Wᵀ for a row-major weight matrix W [rows, cols] as stored by PyTorch's nn.Linear.
// Activations and results are fp32; W is fp32 or bf16 (converted in registers, fp32 accumulation).
#include <cstdint>

namespace moeflow::kernels {

enum class WeightType : uint8_t { f32, bf16 };

// A non-owning view of a weight matrix.
struct Matrix {
  WeightType type = WeightType::f32;
  const void* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features

  int64_t element_bytes() const { return type == WeightType::f32 ? 4 : 2; }
  int64_t bytes() const { return rows * cols * element_bytes(); }
  bool empty() const { return data == nullptr; }
};

// y[n, w.rows] = x[n, w.cols] · Wᵀ. Few rows (decode) use a bandwidth-bound SIMD kernel that reads
// W once; many rows (prefill) go to BLAS sgemm. Threads: OpenMP / OpenBLAS.
void matmul(const float* x, int64_t n, const Matrix& w, float* y);

// Same with explicit leading dimensions (x row stride ldx, y row stride ldy, in elements).
void matmul(const float* x, int64_t ldx, int64_t n, const Matrix& w, float* y, int64_t ldy);

// Rows at or above this count use the sgemm path.
inline constexpr int64_t kGemmMinRows = 48;

}  // namespace moeflow::kernels
