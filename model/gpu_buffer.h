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

// Memory that only grows (contents are not kept when it does), from one CUDA allocator. Not
// copyable; freed on destruction. The caller makes sure no queued work still uses it before it
// grows.
template <class Memory>
class GrowingBuffer {
 public:
  GrowingBuffer() = default;
  ~GrowingBuffer() { Memory::release(p_); }
  GrowingBuffer(const GrowingBuffer&) = delete;
  GrowingBuffer& operator=(const GrowingBuffer&) = delete;

  // Makes room for `need` bytes; `what` names the buffer in the out-of-memory error (a C string,
  // so that a call that does not grow builds no string).
  void reserve(size_t need, const char* what) {
    if (need <= bytes_) return;
    Memory::release(p_);
    p_ = nullptr;
    bytes_ = 0;
    cuda_ok(Memory::allocate(&p_, need),
            std::string(Memory::kCall) + " " + std::to_string(need) + " bytes for " + what);
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

namespace detail {
struct DeviceMemory {
  static constexpr const char* kCall = "cudaMalloc";
  static cudaError_t allocate(void** p, size_t n) { return cudaMalloc(p, n); }
  static void release(void* p) { cudaFree(p); }
};
struct PinnedMemory {
  static constexpr const char* kCall = "cudaMallocHost";
  static cudaError_t allocate(void** p, size_t n) { return cudaMallocHost(p, n); }
  static void release(void* p) { cudaFreeHost(p); }
};
}  // namespace detail

// Device memory, on the device current when it grows.
using DeviceBuffer = GrowingBuffer<detail::DeviceMemory>;
// Page-locked host memory: copies from and to it are truly asynchronous, where pageable memory
// may make cudaMemcpyAsync wait for the stream.
using PinnedBuffer = GrowingBuffer<detail::PinnedMemory>;

}  // namespace moeflow
