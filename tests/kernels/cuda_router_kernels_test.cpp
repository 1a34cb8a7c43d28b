// The router stage's GPU kernels (kernels/cuda/{rms_norm,rotary,gate_matmul,decode_attention}.h)
// against the CPU functions the router stage runs (kernels/cpu/{ops,matmul,attention}.h), on fresh
// random inputs at several shapes: one row, sizes off the vector width, GQA ratios 1/4/8,
// sequence lengths 0..3000 with and without a sliding window, head_dim 64/80/128/256, forced
// split counts (more splits than keys). Outputs and workspaces are poisoned (NaN) before each run.
// Both sides compute in fp32 from the same inputs (bf16 weights included), so only the order of
// the sums differs: ‖gpu − cpu‖/‖cpu‖ < 1e-5, and 5e-5 for attention, whose CPU side sums up to
// 4096 softmax terms one after the other (√n·ε ≈ 4e-6 each side; a missing or extra key costs
// ~1e-2). Each shape's error is printed, to show the margins. Skips without a CUDA device.
#if MOEFLOW_HAVE_CUDA
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/gate_matmul.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow {
namespace {

using kernels::AttentionShape;
using test_support::DeviceArray;
using test_support::relative_error;

constexpr double kFp32Bound = 1e-5;
constexpr double kAttentionBound = 5e-5;
// Scores of order 100: exp would overflow without the max subtracted; rounding of the scores
// (|s|·ε ≈ 1e-5 absolute) moves the weights by as much, relatively.
constexpr double kLargeScoreBound = 1e-3;

// A device copy of `host`; an empty one is still allocated (one element) and nothing is copied.
template <class T>
std::unique_ptr<DeviceArray<T>> to_device(const std::vector<T>& host) {
  if (host.empty()) return std::make_unique<DeviceArray<T>>(size_t{0});
  return std::make_unique<DeviceArray<T>>(host);
}

// Prints one shape's error (the margins are worth seeing on the first GPU run) and checks it.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double bound,
                  const std::string& what) {
  const double err = relative_error(got, want);
  std::printf("  %-60s rel err %.2e (bound %.0e)\n", what.c_str(), err, bound);
  EXPECT_LT(err, bound) << what;
}

std::vector<float> random_normal(size_t n, float mean, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> out(n);
  for (float& v : out) v = normal(rng);
  return out;
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

struct NormShape {
  int64_t rows, hidden;
  float eps;
  bool in_place;    // out == x (OLMoE's q/k norm)
  bool misaligned;  // pointers one float past a 16-byte boundary: the scalar path
};

void check_rms_norm(const NormShape& s, std::mt19937& rng) {
  const std::string what = "rms_norm rows=" + std::to_string(s.rows) +
                           " hidden=" + std::to_string(s.hidden) + (s.in_place ? " in place" : "") +
                           (s.misaligned ? " misaligned" : "");
  const std::vector<float> x = random_normal(s.rows * s.hidden, 0.0f, 3.0f, rng);
  const std::vector<float> weight = random_normal(s.hidden, 1.0f, 0.2f, rng);
  std::vector<float> want(x.size());
  kernels::rms_norm(x.data(), weight.data(), s.rows, s.hidden, s.eps, want.data());

  const size_t skew = s.misaligned ? 1 : 0;
  std::vector<float> x_padded(skew, 0.0f), w_padded(skew, 0.0f);
  x_padded.insert(x_padded.end(), x.begin(), x.end());
  w_padded.insert(w_padded.end(), weight.begin(), weight.end());
  DeviceArray<float> d_x(x_padded), d_w(w_padded), d_out(skew + x.size());
  d_out.poison();
  float* out = s.in_place ? d_x.get() + skew : d_out.get() + skew;
  kernels::cuda::rms_norm(d_x.get() + skew, d_w.get() + skew, s.rows, s.hidden, s.eps, out,
                          nullptr);
  std::vector<float> got = s.in_place ? d_x.download() : d_out.download();
  got.erase(got.begin(), got.begin() + skew);
  expect_close(got, want, kFp32Bound, what);
}

TEST(CudaRouterKernels, RmsNormMatchesTheCpu) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const NormShape shapes[] = {
      {1, 4096, 1e-5f, false, false},  // one decode row, Mixtral's hidden
      {7, 2048, 1e-6f, false, false},  // OLMoE
      {3, 4095, 1e-6f, false, false},  // odd hidden: scalar path
      {5, 6, 1e-6f, false, false},     // narrower than a warp
      {300, 1000, 1e-5f, false, false},
      {9, 2048, 1e-6f, true, false},  // in place, as the q/k norm runs
      {4, 1024, 1e-6f, false, true},  // unaligned pointers: scalar path
      {2, 7168, 1e-6f, true, true},   // DeepSeek-V3-sized hidden, in place, unaligned
  };
  for (const NormShape& s : shapes) check_rms_norm(s, rng);
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding

struct RotaryShape {
  int64_t rows, q_heads, k_heads, head_dim;
  double theta;
  int64_t pad;  // extra floats at the end of each row (a stride wider than the heads)
  int32_t max_position;
};

void check_rotary(const RotaryShape& s, std::mt19937& rng) {
  const std::string what =
      "rotary rows=" + std::to_string(s.rows) + " q_heads=" + std::to_string(s.q_heads) +
      " k_heads=" + std::to_string(s.k_heads) + " head_dim=" + std::to_string(s.head_dim) +
      " pad=" + std::to_string(s.pad);
  const int64_t q_ld = s.q_heads * s.head_dim + s.pad, k_ld = s.k_heads * s.head_dim + s.pad;
  const std::vector<float> q = random_normal(s.rows * q_ld, 0.0f, 1.0f, rng);
  const std::vector<float> k = random_normal(s.rows * k_ld, 0.0f, 1.0f, rng);
  std::uniform_int_distribution<int32_t> position(0, s.max_position);
  std::vector<int32_t> positions(s.rows);
  for (int32_t& p : positions) p = position(rng);
  positions[0] = 0;  // the identity rotation
  std::vector<float> inv_freq(s.head_dim / 2);
  kernels::rope_inv_freq(s.head_dim, s.theta, inv_freq.data());

  std::vector<float> want_q = q, want_k = k;
  kernels::rope_rotate_half(want_q.data(), q_ld, s.rows, s.q_heads, s.head_dim, positions.data(),
                            inv_freq.data());
  if (s.k_heads > 0)
    kernels::rope_rotate_half(want_k.data(), k_ld, s.rows, s.k_heads, s.head_dim, positions.data(),
                              inv_freq.data());

  // In place: the inputs are the outputs, so nothing can be poisoned; the padding must come back
  // untouched (compared exactly through want_*, which the CPU leaves as it is).
  DeviceArray<float> d_q(q), d_freq(inv_freq);
  const auto d_k = to_device(k);  // empty when q is rotated alone
  DeviceArray<int32_t> d_pos(positions);
  kernels::cuda::rope_rotate_half({d_q.get(), q_ld, s.q_heads}, {d_k->get(), k_ld, s.k_heads},
                                  s.rows, s.head_dim, d_pos.get(), d_freq.get(), nullptr);
  expect_close(d_q.download(), want_q, kFp32Bound, what + " q");
  if (s.k_heads > 0) expect_close(d_k->download(), want_k, kFp32Bound, what + " k");
}

TEST(CudaRouterKernels, RotaryMatchesTheCpu) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const RotaryShape shapes[] = {
      {1, 32, 8, 128, 1e6, 0, 32767},    // one decode row, Mixtral
      {5, 16, 16, 64, 1e4, 0, 4096},     // MHA, head_dim 64
      {37, 28, 4, 128, 1e6, 0, 131071},  // Qwen2-MoE layout, long positions
      {3, 12, 2, 128, 5e5, 16, 3000},    // a row stride wider than the heads
      {9, 4, 0, 256, 1e4, 0, 1000},      // q only
      {2, 2, 1, 1024, 1e4, 0, 100},      // the CPU's widest head
      {257, 16, 16, 128, 1e4, 0, 4095},  // OLMoE, prefill-sized
  };
  for (const RotaryShape& s : shapes) check_rotary(s, rng);
}

// ---------------------------------------------------------------------------------------------
// Gate matmul

struct GateShape {
  int64_t rows, experts, hidden;
  kernels::WeightType type;
  bool misaligned;  // x one float past a 16-byte boundary: the scalar path
};

void check_gate_matmul(const GateShape& s, std::mt19937& rng) {
  const bool bf16 = s.type == kernels::WeightType::bf16;
  const std::string what = "gate_matmul rows=" + std::to_string(s.rows) +
                           " experts=" + std::to_string(s.experts) +
                           " hidden=" + std::to_string(s.hidden) + (bf16 ? " bf16" : " fp32") +
                           (s.misaligned ? " misaligned" : "");
  const std::vector<float> x = random_normal(s.rows * s.hidden, 0.0f, 1.0f, rng);
  std::vector<float> w_f32 = random_normal(s.experts * s.hidden, 0.0f, 0.02f, rng);
  std::vector<uint16_t> w_bf16(bf16 ? w_f32.size() : 0);
  if (bf16) kernels::f32_to_bf16(w_f32.data(), w_bf16.data(), static_cast<int64_t>(w_f32.size()));
  const void* host_w = bf16 ? static_cast<const void*>(w_bf16.data()) : w_f32.data();
  std::vector<float> want(s.rows * s.experts);
  kernels::matmul(x.data(), s.rows, kernels::Matrix{s.type, host_w, s.experts, s.hidden},
                  want.data());

  const size_t skew = s.misaligned ? 1 : 0;
  std::vector<float> x_padded(skew, 0.0f);
  x_padded.insert(x_padded.end(), x.begin(), x.end());
  DeviceArray<float> d_x(x_padded), d_logits(want.size());
  const auto d_wf = to_device(bf16 ? std::vector<float>{} : w_f32);
  const auto d_wb = to_device(w_bf16);
  d_logits.poison();
  const void* device_w = bf16 ? static_cast<const void*>(d_wb->get()) : d_wf->get();
  kernels::cuda::gate_matmul(d_x.get() + skew, s.rows,
                             kernels::Matrix{s.type, device_w, s.experts, s.hidden}, d_logits.get(),
                             nullptr);
  expect_close(d_logits.download(), want, kFp32Bound, what);
}

TEST(CudaRouterKernels, GateMatmulMatchesTheCpu) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  using kernels::WeightType;
  const GateShape shapes[] = {
      {1, 8, 4096, WeightType::f32, false},       // Mixtral decode, fp32 gate as loaded
      {1, 8, 4096, WeightType::bf16, false},      // the same, bf16 as stored
      {5, 60, 2048, WeightType::f32, false},      // Qwen2-MoE
      {17, 64, 2048, WeightType::bf16, false},    // OLMoE, a ragged row tile
      {3, 7, 1001, WeightType::f32, false},       // odd hidden: scalar path
      {8, 9, 1004, WeightType::bf16, false},      // hidden % 8 != 0: scalar bf16 path
      {6, 64, 2048, WeightType::f32, true},       // unaligned x: scalar path
      {9, 160, 5120, WeightType::bf16, false},    // DeepSeek-V2-sized
      {300, 256, 7168, WeightType::bf16, false},  // prefill-sized, DeepSeek-V3-sized
  };
  for (const GateShape& s : shapes) check_gate_matmul(s, rng);
}

// ---------------------------------------------------------------------------------------------
// Decode attention

struct DecodeShape {
  AttentionShape attention;  // heads, kv_heads, head_dim, sliding_window
  std::vector<int32_t> kv_lens;
  int splits;     // 0: decode_attention_splits' choice
  float q_scale;  // large values make large scores (the softmax must subtract its max)
};

void check_decode_attention(const DecodeShape& s, std::mt19937& rng) {
  const AttentionShape& a = s.attention;
  const int64_t seqs = static_cast<int64_t>(s.kv_lens.size());
  const int64_t q_dim = a.heads * a.head_dim, kv_dim = a.kv_heads * a.head_dim;
  const int32_t kv_len_max = *std::max_element(s.kv_lens.begin(), s.kv_lens.end());
  const int splits =
      s.splits > 0 ? s.splits : kernels::cuda::decode_attention_splits(seqs, a.heads, kv_len_max);
  const std::string what =
      "attention seqs=" + std::to_string(seqs) + " heads=" + std::to_string(a.heads) + "/" +
      std::to_string(a.kv_heads) + " head_dim=" + std::to_string(a.head_dim) +
      " window=" + std::to_string(a.sliding_window) + " longest=" + std::to_string(kv_len_max) +
      " splits=" + std::to_string(splits);
  const double bound = s.q_scale > 1.0f ? kLargeScoreBound : kAttentionBound;
  const std::vector<float> q = random_normal(seqs * q_dim, 0.0f, s.q_scale, rng);
  std::vector<std::vector<float>> keys(seqs), values(seqs);
  std::vector<float> want(seqs * q_dim);
  for (int64_t i = 0; i < seqs; ++i) {
    const int64_t len = s.kv_lens[i];
    keys[i] = random_normal(len * kv_dim, 0.0f, 1.0f, rng);
    values[i] = random_normal(len * kv_dim, 0.0f, 1.0f, rng);
    // The CPU's decode step: one query at position len - 1, the cache already holding it.
    kernels::attention(q.data() + i * q_dim, 1, len - 1, keys[i].data(), values[i].data(), len, a,
                       want.data() + i * q_dim);
  }

  std::vector<std::unique_ptr<DeviceArray<float>>> d_keys, d_values;
  std::vector<const float*> key_ptrs, value_ptrs;
  for (int64_t i = 0; i < seqs; ++i) {
    d_keys.push_back(to_device(keys[i]));  // empty caches too
    d_values.push_back(to_device(values[i]));
    key_ptrs.push_back(d_keys.back()->get());
    value_ptrs.push_back(d_values.back()->get());
  }
  DeviceArray<float> d_q(q), d_out(want.size());
  DeviceArray<const float*> d_key_ptrs(key_ptrs), d_value_ptrs(value_ptrs);
  DeviceArray<int32_t> d_lens(s.kv_lens);
  const size_t ws_bytes = kernels::cuda::decode_attention_workspace(seqs, a, splits).bytes;
  DeviceArray<uint8_t> d_ws(ws_bytes);
  d_out.poison();
  d_ws.poison();
  const kernels::cuda::DecodeAttentionInputs in{d_q.get(), d_key_ptrs.get(), d_value_ptrs.get(),
                                                d_lens.get(), seqs};
  kernels::cuda::decode_attention(in, a, splits, d_out.get(), d_ws.get(), ws_bytes, nullptr);
  const std::vector<float> got = d_out.download();
  expect_close(got, want, bound, what);
  // Per sequence too, so a wrong short sequence is not hidden by long ones.
  for (int64_t i = 0; i < seqs; ++i) {
    const std::vector<float> got_i(got.begin() + i * q_dim, got.begin() + (i + 1) * q_dim);
    const std::vector<float> want_i(want.begin() + i * q_dim, want.begin() + (i + 1) * q_dim);
    EXPECT_LT(relative_error(got_i, want_i), bound)
        << what << ": sequence " << i << " of length " << s.kv_lens[i];
  }
}

std::vector<int32_t> random_lengths(int64_t seqs, int32_t lo, int32_t hi, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> length(lo, hi);
  std::vector<int32_t> out(seqs);
  for (int32_t& l : out) l = length(rng);
  return out;
}

TEST(CudaRouterKernels, DecodeAttentionMatchesTheCpu) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const DecodeShape shapes[] = {
      {{32, 8, 128, 0}, {1}, 0, 1.0f},   // the first token, GQA 4
      {{8, 8, 64, 0}, {3000}, 0, 1.0f},  // GQA 1, one long sequence (split)
      {{32, 4, 128, 0}, random_lengths(4, 1, 3000, rng), 0, 1.0f},  // GQA 8, ragged lengths
      {{16, 2, 64, 0}, {1, 2, 5}, 8, 1.0f},                         // more splits than keys
      {{8, 1, 128, 100}, random_lengths(5, 1, 400, rng), 4, 1.0f},  // MQA, sliding window
      {{8, 2, 128, 4096}, {5000, 4096, 4097, 17}, 0, 1.0f},         // window at and past its edge
      {{4, 4, 80, 0}, {700, 1, 33}, 3, 1.0f},                       // head_dim off the warp width
      {{4, 2, 256, 0}, random_lengths(7, 1, 1000, rng), 1, 1.0f},   // widest head, one split
      {{16, 16, 128, 0}, {2999}, 64, 1.0f},                         // the most splits
      {{32, 8, 128, 0}, random_lengths(3, 500, 3000, rng), 0, 30.0f},  // scores of order 100
      {{8, 2, 64, 0}, {0, 5, 0}, 2, 1.0f},                             // empty caches give zeros
      {{64, 8, 128, 0}, random_lengths(40, 1, 2000, rng), 0, 1.0f},    // many sequences: no split
  };
  for (const DecodeShape& s : shapes) check_decode_attention(s, rng);
}

}  // namespace
}  // namespace moeflow
#else
#include <gtest/gtest.h>
TEST(CudaRouterKernels, RmsNormMatchesTheCpu) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
TEST(CudaRouterKernels, RotaryMatchesTheCpu) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
TEST(CudaRouterKernels, GateMatmulMatchesTheCpu) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
TEST(CudaRouterKernels, DecodeAttentionMatchesTheCpu) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
#endif
