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
    case 7:
      dot_tile<T, 7>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 6:
      dot_tile<T, 6>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 5:
      dot_tile<T, 5>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 4:
      dot_tile<T, 4>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 3:
      dot_tile<T, 3>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 2:
      dot_tile<T, 2>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 1:
      dot_tile<T, 1>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    default:
      break;
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
      vec xv = simd::load(x + r * ldx + i);
      // Keep xv in a register: GCC otherwise folds the load into each FMA, and the tile becomes
      // bound by loads (one per FMA) instead of FMAs.
      __asm__("" : "+v"(xv));
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
    case 3:
      tile_4w<T, 3>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 2:
      tile_4w<T, 2>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    case 1:
      tile_4w<T, 1>(x + r * ldx, ldx, w, k, y + r * ldy, ldy);
      break;
    default:
      break;
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

// Many rows: sgemm over panels of W rows, the panels spread over the OpenMP threads and each
// sgemm single-threaded, so OpenBLAS's own threads never compete with OpenMP's for the cores.
// bf16 panels are widened to fp32 first; that costs O(rows * k), the sgemm O(n * rows * k).
void matmul_gemm(const float* x, int64_t ldx, int64_t n, const Matrix& w, float* y, int64_t ldy) {
  const int64_t k = w.cols;
  const int64_t panel = std::clamp<int64_t>((256 * 1024) / (k * 4), 16, 256);
  const int64_t panels = (w.rows + panel - 1) / panel;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t o = p * panel;
    const int64_t m = std::min(panel, w.rows - o);
    const float* wp;
    thread_local std::vector<float> buffer;
    if (w.type == WeightType::f32) {
      wp = static_cast<const float*>(w.data) + o * k;
    } else {
      buffer.resize(panel * k);
      bf16_to_f32(static_cast<const uint16_t*>(w.data) + o * k, buffer.data(), m * k);
      wp = buffer.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, x, ldx, wp, k, 0.0f, y + o,
                ldy);
  }
}

// OpenBLAS runs single-threaded inside our OpenMP threads (see matmul_gemm).
const bool kBlasSingleThreaded = [] {
  openblas_set_num_threads(1);
  return true;
}();

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
