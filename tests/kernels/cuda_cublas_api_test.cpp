// cuBLAS loaded at run time (kernels/cuda/cublas_api.h): wherever the library is installed every
// function moeflow uses resolves - no GPU needed for that - and a handle either comes up (with a
// device) or fails naming cublasCreate. Skips where the library is not installed.
#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/cublas_api.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/device.h"

namespace moeflow::kernels::cuda {
namespace {

// The loaded API, or a skip with the loader's reason.
#define MOEFLOW_REQUIRE_CUBLAS(api)                                                          \
  const CublasApi* api = nullptr;                                                            \
  try {                                                                                      \
    api = &cublas_api();                                                                     \
  } catch (const std::runtime_error& e) {                                                    \
    ASSERT_NE(std::string(e.what()).find("libcublas.so.13"), std::string::npos) << e.what(); \
    GTEST_SKIP() << "cuBLAS not installed (" << e.what() << ")";                             \
  }

TEST(CudaCublasApi, ResolvesEveryFunctionItUses) {
  MOEFLOW_REQUIRE_CUBLAS(api);
  EXPECT_NE(api->create, nullptr);
  EXPECT_NE(api->destroy, nullptr);
  EXPECT_NE(api->set_stream, nullptr);
  EXPECT_NE(api->gemm_ex, nullptr);
  EXPECT_EQ(std::string(api->status_name(CUBLAS_STATUS_NOT_SUPPORTED)),
            "CUBLAS_STATUS_NOT_SUPPORTED");
  EXPECT_FALSE(api->path.empty());
  EXPECT_EQ(&cublas_api(), api);  // loaded once
}

TEST(CudaCublasApi, HandleComesUpOrNamesTheFailingCall) {
  MOEFLOW_REQUIRE_CUBLAS(api);
  EXPECT_NE(api->create, nullptr);
  if (device_count().count > 0) {
    CublasHandle blas;
    EXPECT_NE(blas.get(), nullptr);
    try {
      blas.check(CUBLAS_STATUS_INVALID_VALUE, "cublasGemmEx(test: rows 1)");
      FAIL() << "an error status passed";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(
          std::string(e.what()).find("cublasGemmEx(test: rows 1): CUBLAS_STATUS_INVALID_VALUE"),
          std::string::npos)
          << e.what();
    }
    return;
  }
  try {
    CublasHandle blas;
    ADD_FAILURE() << "a cuBLAS handle without a CUDA device";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cublasCreate: CUBLAS_STATUS_"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace moeflow::kernels::cuda
#endif
