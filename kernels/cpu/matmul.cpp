#include "kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/simd.h"

namespace moeflow::kernels {
namespace {

using simd::kLanes;
using simd::vec;

// NX rows of x against NW rows of W: NX*NW dot products of length k, kept in registers.
template <class T, int NX, int NW>
void dot_tile(const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t k, float* y,
              int64_t ldy) {
  vec acc[NX][NW];
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = simd::zero();
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    vec wv[NW];
    for (int j = 0; j < NW; ++j) wv[j] = simd::load(w + j * ldw + i);
    for (int r = 0; r < NX; ++r) {
      vec xv = simd::load(x + r * ldx + i);
      for (int j = 0; j < NW; ++j) acc[r][j] = simd::fma(xv, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < NX; ++r) {
    for (int j = 0; j < NW; ++j) {
      float s = simd::sum(acc[r][j]);
      for (int64_t t = i; t < k; ++t) s += x[r * ldx + t] * simd::to_f32(w[j * ldw + t]);
      y[r * ldy + j] = s;
    }
  }
}

template <class T, int NW>
void dot_rows(const float* x, int64_t ldx, int64_t n, const T* w, int64_t ldw, int64_t k, float* y,
              int64_t ldy) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) dot_tile<T, 4, NW>(x + r * ldx, ldx, w, ldw, k, y + r * ldy, ldy);
  switch (n - r) {
    case 3: dot_tile<T, 3, NW>(x + r * ldx, ldx, w, ldw, k, y + r * ldy, ldy); break;
    case 2: dot_tile<T, 2, NW>(x + r * ldx, ldx, w, ldw, k, y + r * ldy, ldy); break;
    case 1: dot_tile<T, 1, NW>(x + r * ldx, ldx, w, ldw, k, y + r * ldy, ldy); break;
    default: break;
  }
}

// Few rows: parallel over blocks of 4 output features so each thread streams its part of W once.
template <class T>
void matmul_small(const float* x, int64_t ldx, int64_t n, const T* w, int64_t rows, int64_t k,
                  float* y, int64_t ldy) {
  const int64_t blocks = (rows + 3) / 4;
#pragma omp parallel for schedule(static) if (rows * k >= 32768)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t o = b * 4;
    const T* wb = w + o * k;
    if (o + 4 <= rows) {
      dot_rows<T, 4>(x, ldx, n, wb, k, k, y + o, ldy);
    } else {
      for (int64_t oo = o; oo < rows; ++oo) dot_rows<T, 1>(x, ldx, n, w + oo * k, k, k, y + oo, ldy);
    }
  }
}

// Many rows: sgemm; bf16 weights are widened to fp32 one panel at a time.
void matmul_gemm(const float* x, int64_t ldx, int64_t n, const Matrix& w, float* y, int64_t ldy) {
  const int64_t k = w.cols;
  if (w.type == WeightType::f32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, w.rows, k, 1.0f, x, ldx,
                static_cast<const float*>(w.data), k, 0.0f, y, ldy);
    return;
  }
  const int64_t panel = std::max<int64_t>(16, std::min<int64_t>(w.rows, (1 << 20) / k));
  thread_local std::vector<float> buffer;
  buffer.resize(panel * k);
  const auto* src = static_cast<const uint16_t*>(w.data);
  for (int64_t o = 0; o < w.rows; o += panel) {
    const int64_t m = std::min(panel, w.rows - o);
    bf16_to_f32(src + o * k, buffer.data(), m * k);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, x, ldx, buffer.data(), k,
                0.0f, y + o, ldy);
  }
}

}  // namespace

void matmul(const float* x, int64_t ldx, int64_t n, const Matrix& w, float* y, int64_t ldy) {
  if (n <= 0 || w.rows == 0) return;
  if (n >= kGemmMinRows) {
    matmul_gemm(x, ldx, n, w, y, ldy);
  } else if (w.type == WeightType::f32) {
    matmul_small(x, ldx, n, static_cast<const float*>(w.data), w.rows, w.cols, y, ldy);
  } else {
    matmul_small(x, ldx, n, static_cast<const uint16_t*>(w.data), w.rows, w.cols, y, ldy);
  }
}

void matmul(const float* x, int64_t n, const Matrix& w, float* y) {
  matmul(x, w.cols, n, w, y, w.rows);
}

}  // namespace moeflow::kernels
