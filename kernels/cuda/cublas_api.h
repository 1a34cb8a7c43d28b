#pragma once
// The cuBLAS functions moeflow calls, resolved at run time from the library that
// kernels/cuda/shared_library.h finds, and a handle owning one cuBLAS context. Uses the CUDA
// toolkit's headers for the declarations only: nothing links libcublas. Built with CUDA only.
#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace moeflow::kernels::cuda {

// The exported cublasGemmEx. C++ also sees an inline overload that takes a cudaDataType compute
// type, so the exported one is picked by its signature; the cast fails to compile if the header
// ever declares it differently.
using CublasGemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                          int, int, const void*, const void*, cudaDataType, int,
                                          const void*, cudaDataType, int, const void*, void*,
                                          cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using CublasGemmExChecked = decltype(static_cast<CublasGemmExFn>(&::cublasGemmEx));

// Only what is used; each pointer has the exact type of the declaration it stands for.
struct CublasApi {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasDestroy_v2) destroy = nullptr;
  decltype(&::cublasSetStream_v2) set_stream = nullptr;
  CublasGemmExChecked gemm_ex = nullptr;
  decltype(&::cublasGetStatusName) status_name = nullptr;
  decltype(&::cublasGetStatusString) status_string = nullptr;
  std::string path;  // the library file that loaded
};

// Loads cuBLAS on first use, once per process (thread-safe; the library then stays loaded until
// exit). Throws std::runtime_error naming libcublas.so.13 and every path tried when it is
// missing, or the symbol when one is; a failed load is tried again by the next call.
const CublasApi& cublas_api();

// One cuBLAS context on the device current at construction. Not for concurrent use by several
// threads (cuBLAS handles are not); one per GPU expert stage.
class CublasHandle {
 public:
  // Throws std::runtime_error when cuBLAS cannot be loaded or cublasCreate fails.
  CublasHandle();
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  cublasHandle_t get() const { return handle_; }
  const CublasApi& api() const { return *api_; }

  // Throws std::runtime_error "<call>: CUBLAS_STATUS_... (<cuBLAS's text>)" unless `s` is
  // success. `call` names the call and its shape.
  void check(cublasStatus_t s, const std::string& call) const;

 private:
  const CublasApi* api_ = nullptr;
  cublasHandle_t handle_ = nullptr;
};

}  // namespace moeflow::kernels::cuda
