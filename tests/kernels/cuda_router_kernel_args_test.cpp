// Host-side checks of the router stage's GPU kernels (kernels/cuda/router_kernel_args.h): bad
// shapes and missing pointers are refused with std::invalid_argument before any device call, and
// decode attention's split choice and workspace layout. Runs in every build, GPU or not; in a
// CUDA build the launchers themselves are called with bad arguments too (they must throw before
// touching the device, so this needs no GPU either).
#include "kernels/cuda/router_kernel_args.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/gate_matmul.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#endif

namespace moeflow {
namespace {

using kernels::AttentionShape;
using kernels::Matrix;
using kernels::WeightType;
using namespace kernels::cuda;

// Stand-ins for device pointers: never dereferenced by the checks.
float g_buffer[16];
float* const p = g_buffer;
const int32_t g_ints[4] = {};
const float* const g_ptrs[1] = {g_buffer};
alignas(256) unsigned char g_workspace[8192];

TEST(CudaRouterKernelArgs, RmsNormRefusesBadShapes) {
  EXPECT_NO_THROW(check_rms_norm_args(p, p, 2, 8, 1e-6f, p));
  EXPECT_NO_THROW(check_rms_norm_args(nullptr, nullptr, 0, 8, 1e-6f, nullptr));  // nothing to do
  EXPECT_THROW(check_rms_norm_args(p, p, -1, 8, 1e-6f, p), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, p, 2, 0, 1e-6f, p), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, p, 2, 8, -1.0f, p), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, p, 2, 8, NAN, p), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, nullptr, 2, 8, 1e-6f, p), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, p, 2, 8, 1e-6f, nullptr), std::invalid_argument);
  EXPECT_THROW(check_rms_norm_args(p, p, int64_t{1} << 31, 8, 1e-6f, p), std::invalid_argument);
}

TEST(CudaRouterKernelArgs, RotaryRefusesBadShapes) {
  const RotaryTensor q{p, 4 * 64, 4}, k{p, 64, 1};
  EXPECT_NO_THROW(check_rotary_args(q, k, 3, 64, g_ints, p));
  EXPECT_NO_THROW(check_rotary_args(q, RotaryTensor{}, 3, 64, g_ints, p));           // q only
  EXPECT_NO_THROW(check_rotary_args(q, RotaryTensor{p, 300, 1}, 3, 64, g_ints, p));  // wide stride
  EXPECT_THROW(check_rotary_args(q, k, 3, 63, g_ints, p), std::invalid_argument);    // odd
  EXPECT_THROW(check_rotary_args(q, k, 3, 0, g_ints, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args(q, k, 3, kRotaryMaxHeadDim + 2, g_ints, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args({p, 4 * 64 - 1, 4}, k, 3, 64, g_ints, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args({nullptr, 4 * 64, 4}, k, 3, 64, g_ints, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args(q, {p, 64, -1}, 3, 64, g_ints, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args(q, k, 3, 64, nullptr, p), std::invalid_argument);
  EXPECT_THROW(check_rotary_args(q, k, 3, 64, g_ints, nullptr), std::invalid_argument);
  EXPECT_THROW(check_rotary_args(q, k, -1, 64, g_ints, p), std::invalid_argument);
}

TEST(CudaRouterKernelArgs, GateMatmulRefusesBadShapes) {
  const Matrix w{WeightType::bf16, p, 8, 4096};
  EXPECT_NO_THROW(check_gate_matmul_args(p, 3, w, p));
  EXPECT_NO_THROW(check_gate_matmul_args(nullptr, 0, w, nullptr));
  EXPECT_THROW(check_gate_matmul_args(p, -1, w, p), std::invalid_argument);
  EXPECT_THROW(check_gate_matmul_args(p, 3, Matrix{WeightType::f32, p, 0, 4096}, p),
               std::invalid_argument);
  EXPECT_THROW(check_gate_matmul_args(p, 3, Matrix{WeightType::f32, p, 8, 0}, p),
               std::invalid_argument);
  EXPECT_THROW(
      check_gate_matmul_args(p, 3, Matrix{WeightType::f32, p, kGateMatmulMaxExperts + 1, 64}, p),
      std::invalid_argument);
  EXPECT_THROW(check_gate_matmul_args(p, 3, Matrix{WeightType::bf16, nullptr, 8, 4096}, p),
               std::invalid_argument);
  EXPECT_THROW(check_gate_matmul_args(nullptr, 3, w, p), std::invalid_argument);
  EXPECT_THROW(check_gate_matmul_args(p, 3, w, nullptr), std::invalid_argument);
}

TEST(CudaRouterKernelArgs, DecodeAttentionSplitsLongCachesOnly) {
  // Short caches, or enough (sequence, head) pairs to fill the GPU: one split.
  EXPECT_EQ(decode_attention_splits(1, 32, 1), 1);
  EXPECT_EQ(decode_attention_splits(1, 32, kDecodeAttentionKeysPerSplitMin * 2 - 1), 1);
  EXPECT_EQ(decode_attention_splits(64, 32, 100000), 1);
  // One long sequence: splits of at least kDecodeAttentionKeysPerSplitMin keys.
  EXPECT_EQ(decode_attention_splits(1, 8, 3000), 3000 / kDecodeAttentionKeysPerSplitMin);
  // Never more than needed to reach the target block count, nor the maximum.
  EXPECT_EQ(decode_attention_splits(2, 32, 100000), (kDecodeAttentionTargetBlocks + 63) / 64);
  EXPECT_EQ(decode_attention_splits(1, 1, 1 << 30), kDecodeAttentionMaxSplits);
  EXPECT_EQ(decode_attention_splits(0, 8, 0), 1);
}

TEST(CudaRouterKernelArgs, DecodeAttentionWorkspaceIsAlignedAndSized) {
  const AttentionShape shape{32, 8, 128, 0};
  EXPECT_EQ(decode_attention_workspace(4, shape, 1).bytes, 0u);  // one split writes the output
  const DecodeAttentionWorkspace ws = decode_attention_workspace(3, shape, 5);
  const size_t partials = 3 * 32 * 5;
  EXPECT_EQ(ws.max_sum % 256, 0u);
  EXPECT_EQ(ws.acc % 256, 0u);
  EXPECT_GE(ws.acc, ws.max_sum + partials * 2 * sizeof(float));
  EXPECT_GE(ws.bytes, ws.acc + partials * 128 * sizeof(float));
}

TEST(CudaRouterKernelArgs, DecodeAttentionRefusesBadShapes) {
  const AttentionShape shape{8, 2, 64, 0};
  const DecodeAttentionInputs in{p, g_ptrs, g_ptrs, g_ints, 1};
  const size_t ws = decode_attention_workspace(1, shape, 2).bytes;
  ASSERT_LE(ws, sizeof g_workspace);
  EXPECT_NO_THROW(check_decode_attention_args(in, shape, 1, p, nullptr, 0));
  EXPECT_NO_THROW(check_decode_attention_args(in, shape, 2, p, g_workspace, ws));
  const auto refused = [&](const DecodeAttentionInputs& i, const AttentionShape& s, int splits,
                           const float* out, const void* w, size_t bytes) {
    EXPECT_THROW(check_decode_attention_args(i, s, splits, out, w, bytes), std::invalid_argument);
  };
  refused(in, {8, 3, 64, 0}, 1, p, nullptr, 0);  // heads not a multiple of kv_heads
  refused(in, {8, 0, 64, 0}, 1, p, nullptr, 0);
  refused(in, {0, 2, 64, 0}, 1, p, nullptr, 0);
  refused(in, {8, 2, kDecodeAttentionMaxHeadDim + 1, 0}, 1, p, nullptr, 0);
  refused(in, {8, 2, 0, 0}, 1, p, nullptr, 0);
  refused(in, {8, 2, 64, -1}, 1, p, nullptr, 0);
  refused(in, shape, 0, p, nullptr, 0);
  refused(in, shape, kDecodeAttentionMaxSplits + 1, p, nullptr, 0);
  refused(in, shape, 2, p, nullptr, 0);            // no workspace
  refused(in, shape, 2, p, g_workspace, ws - 1);   // too small
  refused(in, shape, 2, p, g_workspace + 16, ws);  // not 256-byte aligned
  refused({nullptr, g_ptrs, g_ptrs, g_ints, 1}, shape, 1, p, nullptr, 0);
  refused({p, nullptr, g_ptrs, g_ints, 1}, shape, 1, p, nullptr, 0);
  refused({p, g_ptrs, nullptr, g_ints, 1}, shape, 1, p, nullptr, 0);
  refused({p, g_ptrs, g_ptrs, nullptr, 1}, shape, 1, p, nullptr, 0);
  refused(in, shape, 1, nullptr, nullptr, 0);
  refused({p, g_ptrs, g_ptrs, g_ints, -1}, shape, 1, p, nullptr, 0);
}

#if MOEFLOW_HAVE_CUDA
// The launchers run the checks before any device call: no GPU needed.
TEST(CudaRouterKernelArgs, LaunchersRefuseBeforeTouchingTheDevice) {
  EXPECT_THROW(rms_norm(p, p, 2, 0, 1e-6f, p, nullptr), std::invalid_argument);
  EXPECT_THROW(rope_rotate_half({p, 64, 1}, {}, 1, 63, g_ints, p, nullptr), std::invalid_argument);
  EXPECT_THROW(gate_matmul(p, 1, Matrix{WeightType::f32, nullptr, 8, 64}, p, nullptr),
               std::invalid_argument);
  const DecodeAttentionInputs in{p, g_ptrs, g_ptrs, g_ints, 1};
  EXPECT_THROW(decode_attention(in, {8, 3, 64, 0}, 1, p, nullptr, 0, nullptr),
               std::invalid_argument);
  EXPECT_THROW(decode_attention(in, {8, 2, 64, 0}, 4, p, nullptr, 0, nullptr),
               std::invalid_argument);
}
#endif

}  // namespace
}  // namespace moeflow
