#include "bench/gpu_limits.h"

#include <string>

#include "core/error.h"

#if MOEFLOW_HAVE_CUDA
#include "bench/gpu_timing.h"
#endif

namespace moeflow::bench {

#if MOEFLOW_HAVE_CUDA
double measure_gpu_copy_bandwidth(int device) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  try {
    const double gbps = measure_copy_gbps(stream);
    cudaStreamDestroy(stream);
    return gbps * 1e9;
  } catch (...) {
    cudaStreamDestroy(stream);
    throw;
  }
}
#else
double measure_gpu_copy_bandwidth(int device) {
  throw Error("cuda:" + std::to_string(device) + ": moeflow was built without CUDA");
}
#endif

}  // namespace moeflow::bench
