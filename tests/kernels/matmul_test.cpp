// matmul against a naive double-precision reference, over shapes that reach every code path:
// n <= 4 (streaming dot kernel), 5..47 (4x4 register tiles), >= 48 (sgemm over W panels), with
// output/input sizes that leave SIMD and tile remainders, for fp32 and bf16 weights.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"

namespace moeflow {
namespace {

using kernels::Matrix;
using kernels::WeightType;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A random weight matrix in the requested storage type, plus its exact fp32 values.
struct TestWeights {
  WeightType type;
  int64_t rows, cols;
  std::vector<float> f32;      // used as the data when type == f32
  std::vector<uint16_t> bf16;  // used as the data when type == bf16
  std::vector<float> values;   // what the kernel should read: f32, or the bf16-decoded values

  Matrix matrix() const {
    Matrix m;
    m.type = type;
    m.data = type == WeightType::f32 ? static_cast<const void*>(f32.data())
                                     : static_cast<const void*>(bf16.data());
    m.rows = rows;
    m.cols = cols;
    return m;
  }
};

TestWeights random_weights(WeightType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  TestWeights w{type, rows, cols, {}, {}, {}};
  w.values.resize(rows * cols);
  if (type == WeightType::f32) {
    w.f32.resize(rows * cols);
    for (auto& v : w.f32) v = dist(rng);
    w.values = w.f32;
  } else {
    w.bf16.resize(rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
      w.bf16[i] = kernels::f32_to_bf16(dist(rng));
      w.values[i] = kernels::bf16_to_f32(w.bf16[i]);
    }
  }
  return w;
}

std::vector<float> random_vector(int64_t size, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(size);
  for (auto& e : v) e = dist(rng);
  return v;
}

const char* type_name(WeightType t) {
  return t == WeightType::f32 ? "f32" : "bf16";
}

// Checks y[r * ldy + o] against sum_i x[r * ldx + i] * w[o, i] in double, within
// 1e-5 * sum_i |x_i w_i| + 1e-6; NaN fails. Reports the first few failing outputs.
void check_against_reference(const float* x, int64_t ldx, int64_t n, const TestWeights& w,
                             const float* y, int64_t ldy, const std::string& what) {
  int64_t failures = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double ref = 0.0, magnitude = 0.0;
      for (int64_t i = 0; i < w.cols; ++i) {
        const double p = static_cast<double>(x[r * ldx + i]) * w.values[o * w.cols + i];
        ref += p;
        magnitude += std::fabs(p);
      }
      const float got = y[r * ldy + o];
      const double tolerance = 1e-5 * magnitude + 1e-6;
      if (std::isnan(got) || !(std::fabs(got - ref) <= tolerance)) {
        if (++failures <= 3)
          ADD_FAILURE() << what << ": y[" << r << ", " << o << "] = " << got << ", want " << ref
                        << " (tolerance " << tolerance << ")";
      }
    }
  }
}

// Runs the contiguous overload on fresh random inputs and compares every output.
void run_case(WeightType type, int64_t n, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const TestWeights w = random_weights(type, rows, cols, rng);
  const std::vector<float> x = random_vector(n * cols, rng);
  std::vector<float> y(n * rows, kNaN);  // poisoned: every output must be written
  kernels::matmul(x.data(), n, w.matrix(), y.data());
  const std::string what = std::string(type_name(type)) + " n=" + std::to_string(n) +
                           " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols);
  check_against_reference(x.data(), cols, n, w, y.data(), rows, what);
}

const int64_t kAllN[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 47, 48, 64, 130};
const int64_t kAllCols[] = {1, 15, 16, 31, 32, 33, 64, 130, 1024};

class MatmulTest : public ::testing::TestWithParam<WeightType> {};

// Every n and every input width against small output counts (1, 3, 4, 5, 17 cover the 4-row
// blocks of the tile path and their remainder). The sgemm path (n >= 48) opens an OpenMP region per
// call, slow on a loaded machine, so it gets two of the output counts (one panel either way).
TEST_P(MatmulTest, SmallOutputCountsMatchReference) {
  uint32_t seed = 1;
  for (int64_t n : kAllN)
    for (int64_t rows : {1, 3, 4, 5, 17}) {
      if (n >= kernels::kGemmMinRows && rows != 1 && rows != 17) continue;
      for (int64_t cols : kAllCols) run_case(GetParam(), n, rows, cols, seed++);
    }
}

// Larger output counts: 64 with every n; 300 (a partial sgemm panel and a partial 4-row block)
// with a few n per path; the widest input only for one n per path.
TEST_P(MatmulTest, LargeOutputCountsMatchReference) {
  uint32_t seed = 1000;
  for (int64_t n : kAllN)
    for (int64_t cols : {1, 33, 130}) run_case(GetParam(), n, 64, cols, seed++);
  for (int64_t n : {1, 4, 5, 17, 47, 48, 130})
    for (int64_t cols : {1, 33, 130}) run_case(GetParam(), n, 300, cols, seed++);
  for (int64_t rows : {64, 300})
    for (int64_t n : {3, 17, 64}) run_case(GetParam(), n, rows, 1024, seed++);
}

// Strided x and y: padding in x is NaN (reading it would poison the result) and padding in y
// holds a sentinel that must survive.
TEST_P(MatmulTest, StridedOperandsLeavePaddingAlone) {
  constexpr float kSentinel = 12345.0f;
  uint32_t seed = 5000;
  for (int64_t n : {1, 3, 6, 47, 48, 70}) {
    for (int64_t cols : {7, 33, 100}) {
      const int64_t rows = 37;
      const int64_t ldx = cols + 5, ldy = rows + 3;
      std::mt19937 rng(seed++);
      const TestWeights w = random_weights(GetParam(), rows, cols, rng);
      const std::vector<float> packed = random_vector(n * cols, rng);
      std::vector<float> x(n * ldx, kNaN);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < cols; ++i) x[r * ldx + i] = packed[r * cols + i];
      std::vector<float> y(n * ldy, kSentinel);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t o = 0; o < rows; ++o) y[r * ldy + o] = kNaN;
      kernels::matmul(x.data(), ldx, n, w.matrix(), y.data(), ldy);
      const std::string what = std::string(type_name(GetParam())) +
                               " strided n=" + std::to_string(n) + " cols=" + std::to_string(cols);
      check_against_reference(x.data(), ldx, n, w, y.data(), ldy, what);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t o = rows; o < ldy; ++o)
          ASSERT_EQ(y[r * ldy + o], kSentinel) << what << ": padding y[" << r << ", " << o << "]";
    }
  }
}

// A call with no rows writes nothing.
TEST_P(MatmulTest, ZeroRowsWritesNothing) {
  std::mt19937 rng(7);
  const TestWeights w = random_weights(GetParam(), 4, 8, rng);
  const std::vector<float> x = random_vector(8, rng);
  std::vector<float> y(4, 3.0f);
  kernels::matmul(x.data(), 0, w.matrix(), y.data());
  for (float v : y) EXPECT_EQ(v, 3.0f);
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, MatmulTest,
                         ::testing::Values(WeightType::f32, WeightType::bf16),
                         [](const ::testing::TestParamInfo<WeightType>& info) {
                           return std::string(type_name(info.param));
                         });

// The bf16 path reads the stored bf16 values, not some other rounding: a weight with low
// mantissa bits set (not representable in fewer bits) gives exactly x * w for one input.
TEST(MatmulBf16Test, UsesExactBf16Values) {
  const uint16_t w_bits[2] = {0x3F81, 0xBFFF};  // 1.0078125, -1.9921875
  Matrix m;
  m.type = WeightType::bf16;
  m.data = w_bits;
  m.rows = 2;
  m.cols = 1;
  for (int64_t n : {1, 5, 48}) {
    std::vector<float> x(n, 2.0f), y(n * 2, kNaN);
    kernels::matmul(x.data(), n, m, y.data());
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(y[r * 2 + 0], 2.015625f) << "n=" << n;
      EXPECT_EQ(y[r * 2 + 1], -3.984375f) << "n=" << n;
    }
  }
}

}  // namespace
}  // namespace moeflow
