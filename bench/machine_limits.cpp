#include "bench/machine_limits.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/cpu/simd.h"

namespace moeflow::bench {
namespace {
namespace simd = kernels::simd;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

double measure_read_bandwidth(int64_t buffer_bytes) {
  const int64_t n = buffer_bytes / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 7);
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
      simd::vec a0 = simd::zero(), a1 = simd::zero(), a2 = simd::zero(), a3 = simd::zero();
      constexpr int64_t step = 4 * simd::kLanes;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n / step; ++i) {
        const float* p = buf.get() + i * step;
        a0 = simd::add(a0, simd::load(p));
        a1 = simd::add(a1, simd::load(p + simd::kLanes));
        a2 = simd::add(a2, simd::load(p + 2 * simd::kLanes));
        a3 = simd::add(a3, simd::load(p + 3 * simd::kLanes));
      }
      total += simd::sum(simd::add(simd::add(a0, a1), simd::add(a2, a3)));
    }
    sink = sink + total;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / seconds_since(t0));
  }
  return best;
}

double measure_fma_peak() {
  constexpr int64_t iterations = 20'000'000;
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
    int threads = 1;
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
#pragma omp single
      threads = omp_get_num_threads();
      // 12 independent chains hide the FMA latency.
      simd::vec acc[12];
      const simd::vec m = simd::set1(0.999999f), a = simd::set1(1e-7f);
      for (auto& v : acc) v = simd::set1(1.0f);
      for (int64_t i = 0; i < iterations / omp_get_num_threads(); ++i)
        for (auto& v : acc) v = simd::fma(v, m, a);
      for (auto& v : acc) total += simd::sum(v);
    }
    volatile float sink = total;
    (void)sink;
    const double flops =
        2.0 * simd::kLanes * 12 * static_cast<double>(iterations / threads) * threads;
    best = std::max(best, flops / seconds_since(t0));
  }
  return best;
}

}  // namespace moeflow::bench
