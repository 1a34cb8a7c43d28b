#include "bench/cuda_expert_bench.h"

#include <cstdio>

#include "kernels/cuda/device.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <random>
#include <string>

#include "core/error.h"
#include "kernels/cuda/expert_stage.h"
#include "kernels/cuda/fill.h"
#endif

namespace moeflow::bench {

#if MOEFLOW_HAVE_CUDA
namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw Error(std::string("bench cuda-experts: ") + what + ": " + cudaGetErrorString(e));
}

// A device allocation freed on scope exit.
struct DeviceMemory {
  void* p = nullptr;
  explicit DeviceMemory(size_t bytes) {
    ok(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
  }
  ~DeviceMemory() { cudaFree(p); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

}  // namespace

int run_cuda_expert_bench(const CudaExpertBenchOptions& o) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count <= o.device) {
    std::printf("bench cuda-experts: skipped: no CUDA device %d (%s)\n", o.device,
                devices.count == 0 ? devices.error.c_str()
                                   : (std::to_string(devices.count) + " visible").c_str());
    return 0;
  }
  ok(cudaSetDevice(o.device), "cudaSetDevice");
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties");
  std::printf("device %d: %s, %d SMs, %.1f GiB\n", o.device, prop.name, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  std::printf("experts %lld (all held), top-%lld, hidden %lld, intermediate %lld, bf16 weights\n",
              static_cast<long long>(o.experts), static_cast<long long>(o.top_k),
              static_cast<long long>(o.hidden), static_cast<long long>(o.inter));

  // Weights on the device, filled there: [experts, I, H] gate and up, [experts, H, I] down.
  const int64_t matrix = o.hidden * o.inter;
  DeviceMemory weights(3 * o.experts * matrix * sizeof(uint16_t) + o.experts * sizeof(int32_t));
  auto* gate = weights.as<uint16_t>();
  uint16_t* up = gate + o.experts * matrix;
  uint16_t* down = up + o.experts * matrix;
  auto* slot_of = reinterpret_cast<int32_t*>(down + o.experts * matrix);
  kernels::cuda::fill_random_bf16(gate, o.experts * matrix, o.seed, 1.0f / 64, nullptr);
  kernels::cuda::fill_random_bf16(up, o.experts * matrix, o.seed + 1, 1.0f / 64, nullptr);
  kernels::cuda::fill_random_bf16(down, o.experts * matrix, o.seed + 2, 1.0f / 64, nullptr);
  std::vector<int32_t> slots(o.experts);
  for (int64_t e = 0; e < o.experts; ++e) slots[e] = static_cast<int32_t>(e);
  ok(cudaMemcpy(slot_of, slots.data(), slots.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
     "upload");
  kernels::cuda::ExpertLayerView view;
  view.gate = gate;
  view.up = up;
  view.down = down;
  view.slot_of_expert = slot_of;
  view.num_experts = o.experts;
  view.slots = o.experts;
  view.hidden = o.hidden;
  view.inter = o.inter;

  cudaStream_t stream = nullptr;
  ok(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaEvent_t start = nullptr, stop = nullptr;
  ok(cudaEventCreate(&start), "cudaEventCreate");
  ok(cudaEventCreate(&stop), "cudaEventCreate");
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  std::printf("\n| rows | pairs | experts touched | ms (median) | TFLOP/s | weight GB/s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const int64_t n : o.rows) {
    // Uniform routing: k distinct experts per row, random weights.
    std::vector<int32_t> ids(n * o.top_k), order(o.experts);
    std::vector<float> w(n * o.top_k);
    std::vector<bool> touched(o.experts, false);
    std::uniform_real_distribution<float> weight(0.05f, 1.0f);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t e = 0; e < o.experts; ++e) order[e] = static_cast<int32_t>(e);
      std::shuffle(order.begin(), order.end(), rng);
      for (int64_t j = 0; j < o.top_k; ++j) {
        ids[r * o.top_k + j] = order[j];
        w[r * o.top_k + j] = weight(rng);
        touched[order[j]] = true;
      }
    }
    const int64_t held_experts = std::count(touched.begin(), touched.end(), true);
    DeviceMemory x(n * o.hidden * sizeof(float)), out(n * o.hidden * sizeof(float));
    DeviceMemory d_ids(ids.size() * sizeof(int32_t)), d_w(w.size() * sizeof(float));
    kernels::cuda::fill_random_f32(x.as<float>(), n * o.hidden, o.seed + 3, 1.0f, stream);
    ok(cudaMemcpy(d_ids.p, ids.data(), ids.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
       "upload");
    ok(cudaMemcpy(d_w.p, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice), "upload");
    const size_t bytes = kernels::cuda::expert_stage_workspace_bytes(view, n, o.top_k);
    DeviceMemory workspace(bytes);
    std::vector<float> ms;
    for (int64_t i = 0; i < o.repeats + 3; ++i) {
      ok(cudaEventRecord(start, stream), "cudaEventRecord");
      kernels::cuda::expert_stage(view, x.as<float>(), n, o.top_k, d_ids.as<int32_t>(),
                                  d_w.as<float>(), out.as<float>(), workspace.p, bytes, stream);
      ok(cudaEventRecord(stop, stream), "cudaEventRecord");
      ok(cudaEventSynchronize(stop), "expert_stage");
      float t = 0.0f;
      ok(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
      if (i >= 3) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double flops = 6.0 * static_cast<double>(n * o.top_k) * o.hidden * o.inter;
    const double weight_bytes = 6.0 * static_cast<double>(held_experts) * matrix;
    std::printf("| %lld | %lld | %lld | %.3f | %.1f | %.0f |\n", static_cast<long long>(n),
                static_cast<long long>(n * o.top_k), static_cast<long long>(held_experts), median,
                flops / (median * 1e-3) / 1e12, weight_bytes / (median * 1e-3) / 1e9);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  std::printf(
      "\nTFLOP/s counts 2 * 3 * H * I per (row, expert) pair; weight GB/s counts each "
      "touched expert's weights once. Compare with the GPU's measured bf16 matmul peak "
      "and HBM bandwidth (not measured here).\n");
  return 0;
}

#else

int run_cuda_expert_bench(const CudaExpertBenchOptions& o) {
  std::printf("bench cuda-experts: skipped: no CUDA device %d (%s)\n", o.device,
              kernels::cuda::device_count().error.c_str());
  return 0;
}

#endif

}  // namespace moeflow::bench
