#include "kernels/cuda/cublas_api.h"

#include <memory>
#include <mutex>
#include <stdexcept>

#include "kernels/cuda/shared_library.h"

namespace moeflow::kernels::cuda {
namespace {

template <class F>
void resolve(const SharedLibrary& lib, F& f, const char* name) {
  f = reinterpret_cast<F>(lib.symbol(name));
}

}  // namespace

const CublasApi& cublas_api() {
  static std::mutex mutex;
  // Never freed: handles destroyed during static destruction still need the library.
  static const CublasApi* api = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (api) return *api;
  auto lib = std::make_unique<SharedLibrary>("cuBLAS (libcublas.so.13)", cublas_library_paths());
  auto a = std::make_unique<CublasApi>();
  // The exported names: cublas_v2.h maps cublasCreate etc. to these _v2 symbols.
  resolve(*lib, a->create, "cublasCreate_v2");
  resolve(*lib, a->destroy, "cublasDestroy_v2");
  resolve(*lib, a->set_stream, "cublasSetStream_v2");
  resolve(*lib, a->gemm_ex, "cublasGemmEx");
  resolve(*lib, a->status_name, "cublasGetStatusName");
  resolve(*lib, a->status_string, "cublasGetStatusString");
  a->path = lib->path();
  lib.release();  // stays loaded for the life of the process
  api = a.release();
  return *api;
}

CublasHandle::CublasHandle() : api_(&cublas_api()) {
  check(api_->create(&handle_), "cublasCreate");
}

CublasHandle::~CublasHandle() {
  if (handle_) api_->destroy(handle_);
}

void CublasHandle::check(cublasStatus_t s, const std::string& call) const {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(call + ": " + api_->status_name(s) + " (" + api_->status_string(s) +
                           ")");
}

}  // namespace moeflow::kernels::cuda
