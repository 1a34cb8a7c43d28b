#pragma once
// Helpers for the GPU kernel tests: skip without a device, device buffers, poisoning, errors.
// Only included by tests built with CUDA (MOEFLOW_HAVE_CUDA).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "tests/support/relative_error.h"

// Skips the test, with the reason, when this process sees no CUDA device.
#define MOEFLOW_REQUIRE_CUDA_DEVICE()                                                     \
  do {                                                                                    \
    const ::moeflow::kernels::cuda::DeviceCount devices_ =                                \
        ::moeflow::kernels::cuda::device_count();                                         \
    if (devices_.count == 0) GTEST_SKIP() << "no CUDA device (" << devices_.error << ")"; \
  } while (0)

namespace moeflow::test_support {

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(e) + " (" +
                             cudaGetErrorString(e) + ")");
}

// A device array of T, freed on scope exit.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T)),
            "cudaMalloc");
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    cuda_ok(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  // Every byte 0xff: NaN for floats, -1 for integers.
  void poison() { cuda_ok(cudaMemset(p_, 0xff, std::max<size_t>(n_, 1) * sizeof(T)), "poison"); }
  std::vector<T> download() const {
    cuda_ok(cudaDeviceSynchronize(), "kernels");
    std::vector<T> out(n_);
    cuda_ok(cudaMemcpy(out.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return out;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace moeflow::test_support
