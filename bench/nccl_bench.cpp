#include "bench/nccl_bench.h"

#include <cstdio>
#include <string>

#include "kernels/cuda/device.h"
#include "transport/nccl/nccl_communicator.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <thread>

#include "core/error.h"
#endif

namespace moeflow::bench {

#if MOEFLOW_HAVE_CUDA
namespace {

using transport::GpuBytes;
using transport::GpuMutableBytes;
using transport::NcclCommunicator;

constexpr int kWarmups = 3;

void ok(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess)
    throw Error("bench nccl: " + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                ")");
}

// A device allocation and a stream on one GPU, freed on scope exit.
struct DeviceBuffers {
  int device = 0;
  void* src = nullptr;
  void* dst = nullptr;
  cudaStream_t stream = nullptr;

  DeviceBuffers(int device, size_t bytes) : device(device) {
    ok(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    ok(cudaMalloc(&src, bytes), "cudaMalloc " + std::to_string(bytes) + " bytes");
    ok(cudaMalloc(&dst, bytes), "cudaMalloc " + std::to_string(bytes) + " bytes");
    ok(cudaMemset(src, 0x5a, bytes), "cudaMemset");
    ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~DeviceBuffers() {
    cudaSetDevice(device);
    if (stream) cudaStreamDestroy(stream);
    cudaFree(src);
    cudaFree(dst);
  }
  DeviceBuffers(const DeviceBuffers&) = delete;
  DeviceBuffers& operator=(const DeviceBuffers&) = delete;
};

// Seconds per call of `issue` (which enqueues work on `stream`), from CUDA events around `reps`
// calls after warm-ups. Host time between calls (NCCL's hand-off) counts: it is what a caller
// of this API gets.
template <class F>
double seconds_per_call(int device, cudaStream_t stream, int reps, F&& issue) {
  ok(cudaSetDevice(device), "cudaSetDevice");
  for (int i = 0; i < kWarmups; ++i) issue();
  ok(cudaStreamSynchronize(stream), "warm-up");
  cudaEvent_t start = nullptr, stop = nullptr;
  ok(cudaEventCreate(&start), "cudaEventCreate");
  ok(cudaEventCreate(&stop), "cudaEventCreate");
  ok(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < reps; ++i) issue();
  ok(cudaEventRecord(stop, stream), "cudaEventRecord");
  ok(cudaEventSynchronize(stop), "timed transfers");
  float ms = 0.0f;
  ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1000.0 / reps;
}

double gbps(size_t bytes, double seconds) {
  return seconds > 0.0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0;
}

std::string size_text(int64_t kib) {
  return kib >= 1024 ? std::to_string(kib / 1024) + " MiB" : std::to_string(kib) + " KiB";
}

// Rank 0 on `device` and rank 1 on `device + 1`, formed together (each join blocks until both
// have joined, so rank 1 joins from a second thread).
struct RankPair {
  std::unique_ptr<NcclCommunicator> first, second;

  explicit RankPair(int device) {
    const auto id = transport::make_nccl_unique_id();
    std::exception_ptr failed;
    std::thread joiner([&] {
      try {
        second = std::make_unique<NcclCommunicator>(id, 2, 1, device + 1);
      } catch (...) {
        failed = std::current_exception();
      }
    });
    try {
      first = std::make_unique<NcclCommunicator>(id, 2, 0, device);
    } catch (...) {
      joiner.join();
      throw;
    }
    joiner.join();
    if (failed) std::rethrow_exception(failed);
  }
};

// Seconds per rank-0-to-rank-1 transfer of `bytes`: rank 0 sends from one thread, rank 1
// receives in another; the receiver's events time it.
double pair_seconds(RankPair& pair, DeviceBuffers& a, DeviceBuffers& b, size_t bytes, int reps) {
  std::exception_ptr failed;
  std::thread sender([&] {
    try {
      ok(cudaSetDevice(a.device), "cudaSetDevice");
      for (int i = 0; i < kWarmups + reps; ++i) pair.first->send({a.src, bytes}, 1, a.stream);
      pair.first->synchronize(a.stream, std::chrono::seconds(60));
    } catch (...) {
      failed = std::current_exception();
    }
  });
  double seconds = 0.0;
  try {
    seconds = seconds_per_call(b.device, b.stream, reps, [&] {
      pair.second->recv({b.dst, bytes}, 0, b.stream);
    });
  } catch (...) {
    pair.second->abort();  // unblocks the sender
    pair.first->abort();
    sender.join();
    throw;
  }
  sender.join();
  if (failed) std::rethrow_exception(failed);
  return seconds;
}

}  // namespace

int run_nccl_bench(const NcclBenchOptions& o) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count <= o.device) {
    std::printf("bench nccl: no CUDA device %d (%s)\n", o.device,
                devices.count == 0 ? devices.error.c_str()
                                   : (std::to_string(devices.count) + " visible").c_str());
    return 2;
  }
  if (const std::string why = transport::nccl_unavailable_reason(); !why.empty()) {
    std::printf("bench nccl: %s\n", why.c_str());
    return 2;
  }
  const bool pair = devices.count >= o.device + 2;
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties");
  std::printf("NCCL %s; cuda:%d %s; %d CUDA devices visible\n", transport::nccl_version().c_str(),
              o.device, prop.name, devices.count);
  if (pair) {
    int access = 0, rank = 0;
    ok(cudaDeviceGetP2PAttribute(&access, cudaDevP2PAttrAccessSupported, o.device, o.device + 1),
       "cudaDeviceGetP2PAttribute");
    ok(cudaDeviceGetP2PAttribute(&rank, cudaDevP2PAttrPerformanceRank, o.device, o.device + 1),
       "cudaDeviceGetP2PAttribute");
    std::printf(
        "cuda:%d -> cuda:%d: peer access %s, performance rank %d (NVLink or PCIe: "
        "nvidia-smi topo -m)\n",
        o.device, o.device + 1, access ? "supported" : "not supported", rank);
    if (access) {
      for (const auto& [from, to] :
           {std::pair{o.device, o.device + 1}, std::pair{o.device + 1, o.device}}) {
        ok(cudaSetDevice(from), "cudaSetDevice");
        const cudaError_t e = cudaDeviceEnablePeerAccess(to, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled)
          cudaGetLastError();  // not an error here: clear it
        else
          ok(e, "cudaDeviceEnablePeerAccess");
      }
    }
  } else {
    std::printf("one GPU: the two-GPU columns need a second device\n");
  }
  std::printf(
      "GB/s of payload (a copy on one GPU reads and writes each byte: twice this in "
      "memory traffic)\n\n");

  const int64_t largest_kib = *std::max_element(o.sizes_kib.begin(), o.sizes_kib.end());
  const size_t largest = static_cast<size_t>(largest_kib) << 10;
  DeviceBuffers local(o.device, largest);
  std::unique_ptr<DeviceBuffers> remote;
  if (pair) remote = std::make_unique<DeviceBuffers>(o.device + 1, largest);

  NcclCommunicator self(transport::make_nccl_unique_id(), 1, 0, o.device);
  std::unique_ptr<RankPair> ranks;
  if (pair) ranks = std::make_unique<RankPair>(o.device);

  std::printf("%10s %12s %12s", "size", "d2d copy", "nccl self");
  if (pair) std::printf(" %12s %12s", "peer copy", "nccl 0->1");
  std::printf("\n");
  for (int64_t kib : o.sizes_kib) {
    const size_t bytes = static_cast<size_t>(kib) << 10;
    const int reps = static_cast<int>(
        std::clamp<int64_t>((o.bytes_per_size_mib << 20) / static_cast<int64_t>(bytes), 5, 1000));
    const double copy = seconds_per_call(o.device, local.stream, reps, [&] {
      ok(cudaMemcpyAsync(local.dst, local.src, bytes, cudaMemcpyDeviceToDevice, local.stream),
         "cudaMemcpyAsync");
    });
    const double nccl_self = seconds_per_call(o.device, local.stream, reps, [&] {
      self.send_recv({local.src, bytes}, 0, {local.dst, bytes}, 0, local.stream);
    });
    std::printf("%10s %12.1f %12.1f", size_text(kib).c_str(), gbps(bytes, copy),
                gbps(bytes, nccl_self));
    if (pair) {
      const double peer = seconds_per_call(o.device, local.stream, reps, [&] {
        ok(cudaMemcpyPeerAsync(remote->dst, remote->device, local.src, local.device, bytes,
                               local.stream),
           "cudaMemcpyPeerAsync");
      });
      const double nccl_pair = pair_seconds(*ranks, local, *remote, bytes, reps);
      std::printf(" %12.1f %12.1f", gbps(bytes, peer), gbps(bytes, nccl_pair));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

#else

int run_nccl_bench(const NcclBenchOptions&) {
  std::printf("bench nccl: %s\n", transport::nccl_unavailable_reason().c_str());
  return 2;
}

#endif

}  // namespace moeflow::bench
