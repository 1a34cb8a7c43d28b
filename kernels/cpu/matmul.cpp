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

// Up to this many x rows, one W row at a time (bandwidth-bound); above it, 4x4 register tiles
// (compute-bound).
constexpr int64_t kStreamMaxRows = 4;

// NX rows of x against one row of W: NX dot products of length k, two accumulators each (two
// independent FMA chains). One W row is one sequential stream; measured on Zen 4 this streams
// ~1.5x faster than interleaving several W rows, and the W row stays in L1 for the next x rows.
template <class T, int NX>
void dot_tile(const float* x, int64_t ldx, const T* w, int64_t k, float* y, int64_t ldy) {
  vec acc0[NX], acc1[NX];
  for (int r = 0; r < NX; ++r) acc0[r] = acc1[r] = simd::zero();
  int64_t i = 0;
  for (; i + 2 * kLanes <= k; i += 2 * kLanes) {
    const vec w0 = simd::load(w + i), w1 = simd::load(w + i + kLanes);
    for (int r = 0; r < NX; ++r) {
      acc0[r] = simd::fma(simd::load(x + r * ldx + i), w0, acc0[r]);
      acc1[r] = simd::fma(simd::load(x + r * ldx + i + kLanes), w1, acc1[r]);
    }
  }
  for (; i + kLanes <= k; i += kLanes) {
    const vec w0 = simd::load(w + i);
    for (int r = 0; r < NX; ++r) acc0[r] = simd::fma(simd::load(x + r * ldx + i), w0, acc0[r]);
  }
  for (int r = 0; r < NX; ++r) {
    float s = simd::sum(simd::add(acc0[r], acc1[r]));
    for (int64_t t = i; t < k; ++t) s += x[r * ldx + t] * simd::to_f32(w[t]);
    y[r * ldy] = s;
  }
}

template <class T>
void dot_rows(const float* x, int64_t ldx, int64_t n, const T* w, int64_t k, float* y,
              int64_t ldy) {
  int64_t r = 0;
  for (; r + 8 <= n; r += 8) dot_tile<T, 8>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
  switch (n - r) {
    case 7: dot_tile<T, 7>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 6: dot_tile<T, 6>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 5: dot_tile<T, 5>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 4: dot_tile<T, 4>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 3: dot_tile<T, 3>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 2: dot_tile<T, 2>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 1: dot_tile<T, 1>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    default: break;
  }
}

// Register tile of 4 x rows by 4 W rows: each W vector feeds 4 FMAs and each x vector 4, so with
// more than a few rows the kernel is bound by FMA throughput instead of conversions and loads.
template <class T, int NX>
void tile_4w(const float* x, int64_t ldx, const T* w, int64_t k, float* y, int64_t ldy) {
  constexpr int NW = 4;
  vec acc[NX][NW];
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = simd::zero();
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    vec wv[NW];
    for (int j = 0; j < NW; ++j) wv[j] = simd::load(w + j * k + i);
    for (int r = 0; r < NX; ++r) {
      const vec xv = simd::load(x + r * ldx + i);
      for (int j = 0; j < NW; ++j) acc[r][j] = simd::fma(xv, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < NX; ++r) {
    for (int j = 0; j < NW; ++j) {
      float s = simd::sum(acc[r][j]);
      for (int64_t t = i; t < k; ++t) s += x[r * ldx + t] * simd::to_f32(w[j * k + t]);
      y[r * ldy + j] = s;
    }
  }
}

// All n rows of x against W rows [o, o + 4).
template <class T>
void rows_4w(const float* x, int64_t ldx, int64_t n, const T* w, int64_t k, float* y, int64_t ldy) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) tile_4w<T, 4>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
  switch (n - r) {
    case 3: tile_4w<T, 3>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 2: tile_4w<T, 2>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    case 1: tile_4w<T, 1>(x + r * ldx, ldx, w, k, y + r * ldy, ldy); break;
    default: break;
  }
}

// Few rows: parallel over output features; each thread streams a contiguous part of W once.
template <class T>
void matmul_small(const float* x, int64_t ldx, int64_t n, const T* w, int64_t rows, int64_t k,
                  float* y, int64_t ldy) {
  if (n <= kStreamMaxRows) {
#pragma omp parallel for schedule(static) if (rows * k >= 32768)
    for (int64_t o = 0; o < rows; ++o) dot_rows<T>(x, ldx, n, w + o * k, k, y + o, ldy);
    return;
  }
  const int64_t blocks = rows / 4;
#pragma omp parallel for schedule(static) if (rows * k >= 32768)
  for (int64_t b = 0; b < blocks; ++b) rows_4w<T>(x, ldx, n, w + 4 * b * k, k, y + 4 * b, ldy);
  for (int64_t o = 4 * blocks; o < rows; ++o) dot_rows<T>(x, ldx, n, w + o * k, k, y + o, ldy);
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
