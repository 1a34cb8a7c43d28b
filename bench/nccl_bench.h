#pragma once
// NCCL transfer bandwidth between GPU shards (docs/nccl.md): send/recv of 64 KiB..256 MiB to the
// same GPU (a 1-rank communicator sending to itself) and, with two GPUs, from the first to the
// second; beside each, the plain CUDA copy that bounds it (device-to-device on one GPU, peer copy
// between two). Without a CUDA device or the NCCL library it says why and returns 2.
#include <cstdint>
#include <vector>

namespace moeflow::bench {

struct NcclBenchOptions {
  std::vector<int64_t> sizes_kib = {64, 256, 1024, 4096, 16384, 65536, 262144};
  int device = 0;                     // the first GPU; the pair is device and device + 1
  int64_t bytes_per_size_mib = 1024;  // timed bytes per size and path (at least 5 transfers)
};

int run_nccl_bench(const NcclBenchOptions& opts);

}  // namespace moeflow::bench
