// The element-wise and row-wise kernels (kernels/cpu/ops.h) against naive double-precision
// references, and the storage-type conversions (kernels/cpu/convert.h) against known bit patterns.
#include "kernels/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "kernels/cpu/convert.h"

namespace moeflow {
namespace {

std::vector<float> random_vector(int64_t size, std::mt19937& rng, float lo = -1.0f,
                                 float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(size);
  for (auto& e : v) e = dist(rng);
  return v;
}

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// ---- rms_norm -------------------------------------------------------------------------------

// Each row is x / sqrt(mean(x^2) + eps) * weight, computed in double.
void expect_rms_norm(const std::vector<float>& x, const std::vector<float>& weight, int64_t n,
                     int64_t d, float eps, const std::vector<float>& got) {
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[r * d + i]) * x[r * d + i];
    const double scale = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i) {
      const double want = x[r * d + i] * scale * weight[i];
      ASSERT_NEAR(got[r * d + i], want, 2e-6 * std::fabs(want) + 1e-7)
          << "d=" << d << " row " << r << " i " << i;
    }
  }
}

TEST(RmsNormTest, MatchesReference) {
  std::mt19937 rng(1);
  for (int64_t d : {1, 7, 64, 1000}) {
    const int64_t n = 3;
    const auto x = random_vector(n * d, rng, -3.0f, 3.0f);
    const auto weight = random_vector(d, rng, 0.5f, 2.0f);
    std::vector<float> out(n * d, std::numeric_limits<float>::quiet_NaN());
    kernels::rms_norm(x.data(), weight.data(), n, d, 1e-5f, out.data());
    expect_rms_norm(x, weight, n, d, 1e-5f, out);
  }
}

// out may alias x.
TEST(RmsNormTest, InPlaceMatchesReference) {
  std::mt19937 rng(2);
  const int64_t n = 4, d = 96;
  const auto x = random_vector(n * d, rng, -3.0f, 3.0f);
  const auto weight = random_vector(d, rng, 0.5f, 2.0f);
  std::vector<float> buf = x;
  kernels::rms_norm(buf.data(), weight.data(), n, d, 1e-6f, buf.data());
  expect_rms_norm(x, weight, n, d, 1e-6f, buf);
}

// eps matters for a row of zeros-ish: with eps = 1 a tiny row stays tiny instead of blowing up.
TEST(RmsNormTest, EpsIsAddedInsideTheRoot) {
  const std::vector<float> x = {1e-3f, -1e-3f}, weight = {1.0f, 1.0f};
  std::vector<float> out(2);
  kernels::rms_norm(x.data(), weight.data(), 1, 2, 1.0f, out.data());
  EXPECT_NEAR(out[0], 1e-3 / std::sqrt(1e-6 + 1.0), 1e-9);
  EXPECT_NEAR(out[1], -1e-3 / std::sqrt(1e-6 + 1.0), 1e-9);
}

// ---- rotary embedding ---------------------------------------------------------------------------

TEST(RopeTest, InvFreqMatchesFormula) {
  for (int64_t head_dim : {2, 16, 64, 128}) {
    for (double theta : {10000.0, 1000000.0, 500.0}) {
      std::vector<float> inv(head_dim / 2, -1.0f);
      kernels::rope_inv_freq(head_dim, theta, inv.data());
      for (int64_t i = 0; i < head_dim / 2; ++i) {
        const double want = 1.0 / std::pow(theta, 2.0 * i / head_dim);
        EXPECT_NEAR(inv[i], want, 2e-6 * want)
            << "head_dim " << head_dim << " theta " << theta << " i " << i;
      }
    }
  }
}

// The HF rotate_half formula in double: out[i] = x[i] cos - x[i+h] sin, out[i+h] = x[i+h] cos +
// x[i] sin. The angle is position * inv_freq[i] rounded to fp32, as transformers computes it
// (a float32 matmul of inv_freq and positions); cos and sin are then taken in double.
void rope_reference(const float* x, int64_t heads, int64_t head_dim, int32_t position,
                    const float* inv_freq, double* out) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const float* v = x + h * head_dim;
    double* o = out + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<float>(position) * inv_freq[i];
      const double c = std::cos(angle), s = std::sin(angle);
      o[i] = v[i] * c - v[i + half] * s;
      o[i + half] = v[i + half] * c + v[i] * s;
    }
  }
}

TEST(RopeTest, RotateHalfMatchesReference) {
  std::mt19937 rng(3);
  for (int64_t head_dim : {8, 64, 128}) {
    for (int64_t heads : {1, 3, 8}) {
      std::vector<float> inv(head_dim / 2);
      kernels::rope_inv_freq(head_dim, 10000.0, inv.data());
      const std::vector<int32_t> positions = {0, 1, 2, 17, 100, 1000, 4095};
      const int64_t n = static_cast<int64_t>(positions.size());
      const int64_t width = heads * head_dim, ld = width + 6;  // padded rows
      constexpr float kSentinel = 777.0f;
      std::vector<float> x(n * ld, kSentinel);
      for (int64_t r = 0; r < n; ++r) {
        const auto row = random_vector(width, rng);
        std::copy(row.begin(), row.end(), x.begin() + r * ld);
      }
      const std::vector<float> original = x;
      kernels::rope_rotate_half(x.data(), ld, n, heads, head_dim, positions.data(), inv.data());
      std::vector<double> want(width);
      for (int64_t r = 0; r < n; ++r) {
        rope_reference(original.data() + r * ld, heads, head_dim, positions[r], inv.data(),
                       want.data());
        for (int64_t i = 0; i < width; ++i)
          ASSERT_NEAR(x[r * ld + i], want[i], 2e-6) << "head_dim " << head_dim << " heads " << heads
                                                    << " pos " << positions[r] << " i " << i;
        for (int64_t i = width; i < ld; ++i) ASSERT_EQ(x[r * ld + i], kSentinel);
      }
    }
  }
}

// Position 0 is the identity, exactly.
TEST(RopeTest, PositionZeroIsIdentity) {
  std::mt19937 rng(4);
  const int64_t heads = 4, head_dim = 32;
  std::vector<float> inv(head_dim / 2);
  kernels::rope_inv_freq(head_dim, 10000.0, inv.data());
  std::vector<float> x = random_vector(heads * head_dim, rng);
  const std::vector<float> original = x;
  const int32_t pos = 0;
  kernels::rope_rotate_half(x.data(), heads * head_dim, 1, heads, head_dim, &pos, inv.data());
  EXPECT_EQ(x, original);
}

// Rotation preserves the norm of every (i, i + half) pair, and at angle pi/2 swaps the halves.
TEST(RopeTest, QuarterTurnSwapsHalves) {
  const int64_t head_dim = 4;
  const float inv[2] = {static_cast<float>(std::numbers::pi / 2),
                        0.0f};  // pair 0 turns pi/2, pair 1 not
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  const int32_t pos = 1;
  kernels::rope_rotate_half(x.data(), head_dim, 1, 1, head_dim, &pos, inv);
  EXPECT_NEAR(x[0], -3.0f, 1e-6);  // x0 cos - x2 sin
  EXPECT_NEAR(x[2], 1.0f, 1e-6);   // x2 cos + x0 sin
  EXPECT_EQ(x[1], 2.0f);
  EXPECT_EQ(x[3], 4.0f);
}

// ---- element-wise ops -----------------------------------------------------------------------

TEST(SiluMulTest, MatchesReference) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 15, 16, 17, 100}) {
    auto gate = random_vector(n, rng, -8.0f, 8.0f);
    const auto up = random_vector(n, rng, -2.0f, 2.0f);
    const auto original = gate;
    kernels::silu_mul(gate.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = original[i];
      const double want = g / (1.0 + std::exp(-g)) * up[i];
      EXPECT_NEAR(gate[i], want, 1e-6 * std::fabs(want) + 1e-7) << "n " << n << " i " << i;
    }
  }
}

// Large negative gates give 0, not NaN (exp overflows to inf there).
TEST(SiluMulTest, SaturatesWithoutNaN) {
  std::vector<float> gate = {-200.0f, 200.0f}, up = {3.0f, 3.0f};
  kernels::silu_mul(gate.data(), up.data(), 2);
  EXPECT_EQ(gate[0], -0.0f);
  EXPECT_FALSE(std::isnan(gate[0]));
  EXPECT_FLOAT_EQ(gate[1], 600.0f);
}

TEST(AxpyTest, MatchesReferenceForAllLengths) {
  std::mt19937 rng(6);
  for (int64_t n = 0; n <= 70; ++n) {
    const auto x = random_vector(n + 1, rng);
    auto y = random_vector(n + 1, rng);
    const auto original = y;
    const float a = -1.75f;
    kernels::axpy(a, x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(y[i], original[i] + static_cast<double>(a) * x[i], 1e-6) << "n " << n;
    EXPECT_EQ(y[n], original[n]) << "axpy wrote past n=" << n;
  }
}

TEST(AddBiasTest, AddsToEveryRow) {
  std::mt19937 rng(7);
  const int64_t n = 3, d = 19;
  auto y = random_vector(n * d, rng);
  const auto bias = random_vector(d, rng);
  const auto original = y;
  kernels::add_bias(y.data(), bias.data(), n, d);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < d; ++i)
      EXPECT_FLOAT_EQ(y[r * d + i], original[r * d + i] + bias[i]) << r << ", " << i;
}

TEST(SoftmaxRowsTest, MatchesReferenceAndSumsToOne) {
  std::mt19937 rng(8);
  for (int64_t d : {1, 2, 8, 33, 500}) {
    const int64_t n = 4;
    auto x = random_vector(n * d, rng, -10.0f, 10.0f);
    const auto original = x;
    kernels::softmax_rows(x.data(), n, d);
    for (int64_t r = 0; r < n; ++r) {
      double m = -INFINITY, total = 0.0, sum_got = 0.0;
      for (int64_t i = 0; i < d; ++i) m = std::max(m, static_cast<double>(original[r * d + i]));
      for (int64_t i = 0; i < d; ++i) total += std::exp(original[r * d + i] - m);
      for (int64_t i = 0; i < d; ++i) {
        const double want = std::exp(original[r * d + i] - m) / total;
        EXPECT_NEAR(x[r * d + i], want, 1e-6 * want + 1e-9) << "d " << d << " row " << r;
        sum_got += x[r * d + i];
      }
      EXPECT_NEAR(sum_got, 1.0, 1e-5) << "d " << d << " row " << r;
    }
  }
}

// Logits around 1000 would overflow exp without subtracting the row maximum.
TEST(SoftmaxRowsTest, StableForLargeLogits) {
  std::vector<float> x = {1000.0f, 999.0f, 998.0f, -1000.0f, -1001.0f, -1000.0f};
  kernels::softmax_rows(x.data(), 2, 3);
  const double z = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  EXPECT_NEAR(x[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(x[1], std::exp(-1.0) / z, 1e-6);
  EXPECT_NEAR(x[2], std::exp(-2.0) / z, 1e-6);
  const double z2 = 2.0 + std::exp(-1.0);
  EXPECT_NEAR(x[3], 1.0 / z2, 1e-6);
  EXPECT_NEAR(x[4], std::exp(-1.0) / z2, 1e-6);
  EXPECT_NEAR(x[5], 1.0 / z2, 1e-6);
}

TEST(ClampTest, ClampsToSymmetricLimit) {
  std::vector<float> x = {-10.0f, -2.0f, -1.999f, 0.0f, 1.5f, 2.0f, 2.5f, 1e30f, -INFINITY};
  kernels::clamp(x.data(), static_cast<int64_t>(x.size()), 2.0f);
  const std::vector<float> want = {-2.0f, -2.0f, -1.999f, 0.0f, 1.5f, 2.0f, 2.0f, 2.0f, -2.0f};
  EXPECT_EQ(x, want);
}

TEST(SigmoidTest, MatchesReferenceAndSaturates) {
  for (float v : {-20.0f, -3.0f, -0.5f, 0.0f, 0.25f, 4.0f, 30.0f})
    EXPECT_NEAR(kernels::sigmoid(v), 1.0 / (1.0 + std::exp(-static_cast<double>(v))), 1e-7) << v;
  EXPECT_EQ(kernels::sigmoid(0.0f), 0.5f);
  EXPECT_EQ(kernels::sigmoid(-1000.0f), 0.0f);
  EXPECT_EQ(kernels::sigmoid(1000.0f), 1.0f);
}

// ---- conversions ----------------------------------------------------------------------------

// Values with at most 8 significant bits survive f32 -> bf16 -> f32 exactly.
TEST(ConvertTest, Bf16RoundTripOfRepresentableValues) {
  for (float v :
       {0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 3.140625f, 65536.0f, -1.0078125f, std::ldexp(1.0f, -126),
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    const uint16_t b = kernels::f32_to_bf16(v);
    EXPECT_EQ(to_bits(kernels::bf16_to_f32(b)), to_bits(v)) << v;
  }
  // Every bf16 bit pattern that is not NaN decodes and re-encodes to itself.
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = kernels::bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(kernels::f32_to_bf16(f), b) << std::hex << b;
  }
}

TEST(ConvertTest, Bf16DecodesKnownValues) {
  EXPECT_EQ(kernels::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(kernels::bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(kernels::bf16_to_f32(0x3F81), 1.0078125f);
  EXPECT_EQ(kernels::bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
}

// Round to nearest, ties to even, like torch.
TEST(ConvertTest, F32ToBf16RoundsToNearestEven) {
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, even below
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, even above
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0x3F808001)), 0x3F81);  // just above the tie
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0x3F807FFF)), 0x3F80);  // just below the tie
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0xBF818000)), 0xBF82);  // negative tie
  EXPECT_EQ(kernels::f32_to_bf16(from_bits(0x3FFFFFFF)), 0x4000);  // carries into the exponent
  EXPECT_EQ(kernels::f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
}

TEST(ConvertTest, F32ToBf16KeepsNaN) {
  for (uint32_t bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7F80FFFFu, 0xFF800001u}) {
    const uint16_t b = kernels::f32_to_bf16(from_bits(bits));
    EXPECT_TRUE(std::isnan(kernels::bf16_to_f32(b))) << std::hex << bits << " -> " << b;
  }
}

TEST(ConvertTest, BulkConversionsEqualScalar) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<uint32_t> bits16(0, 0xFFFF);
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<uint16_t> src(n + 1);
    for (auto& b : src) b = static_cast<uint16_t>(bits16(rng));
    std::vector<float> dst(n + 1, -123.0f);
    kernels::bf16_to_f32(src.data(), dst.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(to_bits(dst[i]), to_bits(kernels::bf16_to_f32(src[i]))) << "bf16 n " << n;
    ASSERT_EQ(dst[n], -123.0f) << "bf16_to_f32 wrote past n=" << n;

    std::fill(dst.begin(), dst.end(), -123.0f);
    kernels::f16_to_f32(src.data(), dst.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float want = kernels::f16_to_f32(src[i]);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(dst[i])) << "f16 n " << n;
      } else {
        ASSERT_EQ(to_bits(dst[i]), to_bits(want)) << "f16 n " << n << " i " << i;
      }
    }
    ASSERT_EQ(dst[n], -123.0f) << "f16_to_f32 wrote past n=" << n;

    const auto f = random_vector(n + 1, rng, -100.0f, 100.0f);
    std::vector<uint16_t> out(n + 1, 0xABCD);
    kernels::f32_to_bf16(f.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], kernels::f32_to_bf16(f[i])) << "n " << n;
    ASSERT_EQ(out[n], 0xABCD) << "f32_to_bf16 wrote past n=" << n;
  }
}

TEST(ConvertTest, F16DecodesKnownValues) {
  EXPECT_EQ(kernels::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(kernels::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(kernels::f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(kernels::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(kernels::f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(kernels::f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(to_bits(kernels::f16_to_f32(0x8000)), 0x80000000u);  // -0
  EXPECT_TRUE(std::isnan(kernels::f16_to_f32(0x7E00)));
}

}  // namespace
}  // namespace moeflow
