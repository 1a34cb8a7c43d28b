#pragma once
// Device memory and CUDA-event timing for the GPU benchmarks (CUDA builds only).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace moeflow::bench {

inline void check_cuda(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Error("bench: " + what + ": " + cudaGetErrorString(e));
}

// A device allocation freed on scope exit.
struct DeviceMemory {
  void* p = nullptr;
  explicit DeviceMemory(size_t bytes) {
    check_cuda(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
  }
  ~DeviceMemory() { cudaFree(p); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// Median milliseconds of `timed` calls of `work(i)` on `stream`, each between two CUDA events,
// after `warmups` untimed ones.
class EventTimer {
 public:
  explicit EventTimer(cudaStream_t stream, int warmups = 3) : stream_(stream), warmups_(warmups) {
    check_cuda(cudaEventCreate(&start_), "cudaEventCreate");
    check_cuda(cudaEventCreate(&stop_), "cudaEventCreate");
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  double median_ms(int64_t timed, const std::function<void(int64_t)>& work) {
    std::vector<float> ms;
    for (int64_t i = 0; i < warmups_ + timed; ++i) {
      check_cuda(cudaEventRecord(start_, stream_), "cudaEventRecord");
      work(i);
      check_cuda(cudaEventRecord(stop_, stream_), "cudaEventRecord");
      check_cuda(cudaEventSynchronize(stop_), "timed work");
      float t = 0.0f;
      check_cuda(cudaEventElapsedTime(&t, start_, stop_), "cudaEventElapsedTime");
      if (i >= warmups_) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

 private:
  cudaStream_t stream_;
  int warmups_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// One 1 GiB device-to-device copy on `stream`, median of 10: bytes read + written per second.
inline double measure_copy_gbps(cudaStream_t stream) {
  constexpr size_t kBytes = size_t{1} << 30;
  DeviceMemory src(kBytes), dst(kBytes);
  check_cuda(cudaMemsetAsync(src.p, 1, kBytes, stream), "cudaMemsetAsync");
  EventTimer timer(stream);
  const double ms = timer.median_ms(10, [&](int64_t) {
    check_cuda(cudaMemcpyAsync(dst.p, src.p, kBytes, cudaMemcpyDeviceToDevice, stream), "copy");
  });
  return 2.0 * kBytes / (ms * 1e-3) / 1e9;
}

}  // namespace moeflow::bench
