// The elementwise router kernels (kernels/cuda/elementwise.h) refuse bad arguments with
// std::invalid_argument naming the function before any device call, so these run in every CUDA
// build, GPU or not. Their arithmetic is checked on a GPU through
// tests/model/gpu_router_stage_test.
#if MOEFLOW_HAVE_CUDA

#include "kernels/cuda/elementwise.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace moeflow::kernels::cuda {
namespace {

template <class F>
std::string refusal(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(CudaElementwiseArgs, RefusalsNameTheFunctionAndArgument) {
  float* fake = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced: refused first
  uint16_t* fake16 = reinterpret_cast<uint16_t*>(uintptr_t{256});
  const int32_t* tokens = reinterpret_cast<const int32_t*>(uintptr_t{256});
  EXPECT_EQ(refusal([&] { embed_rows_bf16(fake16, 0, 8, tokens, 1, fake, nullptr); }),
            "embed_rows_bf16: table shape [0, 8]");
  EXPECT_EQ(refusal([&] { embed_rows_bf16(nullptr, 4, 8, tokens, 1, fake, nullptr); }),
            "embed_rows_bf16: table is null for 32 elements");
  EXPECT_EQ(refusal([&] { f32_to_bf16(fake, -1, fake16, nullptr); }),
            "f32_to_bf16: n -1 is negative");
  EXPECT_EQ(refusal([&] { f32_to_bf16(nullptr, 3, fake16, nullptr); }),
            "f32_to_bf16: x is null for 3 elements");
  EXPECT_EQ(refusal([&] { add_bias_rows(fake, fake, 2, 0, nullptr); }),
            "add_bias_rows: cols 0 is not positive");
  EXPECT_EQ(refusal([&] { clamp_values(fake, 4, 0.0f, nullptr); }).find("clamp_values: limit"), 0u);
  EXPECT_EQ(refusal([&] { add_values(fake, nullptr, 4, nullptr); }),
            "add_values: x is null for 4 elements");
  EXPECT_EQ(refusal([&] { silu_mul_to_bf16(fake, fake, 4, nullptr, nullptr); }),
            "silu_mul_to_bf16: out is null for 4 elements");
  EXPECT_EQ(refusal([&] { gated_add_rows(fake, fake, nullptr, fake, 2, 8, nullptr); }),
            "gated_add_rows: gate_input is null for 2 elements");
  // Nothing to do is not an error, and launches nothing.
  EXPECT_NO_THROW(add_values(nullptr, nullptr, 0, nullptr));
  EXPECT_NO_THROW(gated_add_rows(nullptr, nullptr, nullptr, nullptr, 0, 8, nullptr));
}

}  // namespace
}  // namespace moeflow::kernels::cuda

#endif  // MOEFLOW_HAVE_CUDA
