#pragma once
// Device memory for the GPU stages of model/: a CUDA runtime status turned into moeflow::Error
// with context, a growable device buffer and a growable page-locked host buffer. Include only
// where MOEFLOW_HAVE_CUDA is set.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "core/error.h"

namespace moeflow {

// Throws moeflow::Error "<what>: cudaErrorX (text)" unless `e` is cudaSuccess. `what` names the
// stage, the call and what it was for ("GPU router stage on cuda:0: copy hidden in").
inline void cuda_ok(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess)
    throw Error(what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// A device buffer that only grows (contents are not kept when it does). On the device current
// when it grows. Not copyable; freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Makes room for `need` bytes; `what` names the buffer in the out-of-memory error (a C string,
  // so that a call that does not grow builds no string).
  void reserve(size_t need, const char* what) {
    if (need <= bytes_) return;
    cudaFree(p_);
    p_ = nullptr;
    bytes_ = 0;
    cuda_ok(cudaMalloc(&p_, need),
            "cudaMalloc " + std::to_string(need) + " bytes for " + std::string(what));
    bytes_ = need;
  }
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory that only grows (contents are not kept when it does): copies from and
// to it are truly asynchronous, where pageable memory may make cudaMemcpyAsync wait for the
// stream. The caller makes sure no queued copy still uses it before it grows.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { cudaFreeHost(p_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // Makes room for `need` bytes; `what` names the buffer in the error.
  void reserve(size_t need, const char* what) {
    if (need <= bytes_) return;
    cudaFreeHost(p_);
    p_ = nullptr;
    bytes_ = 0;
    cuda_ok(cudaMallocHost(&p_, need),
            "cudaMallocHost " + std::to_string(need) + " bytes for " + std::string(what));
    bytes_ = need;
  }
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace moeflow
