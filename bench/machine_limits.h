#pragma once
// The physical limits a benchmark is compared against, measured on this machine in the same run.
#include <cstdint>

namespace moeflow::bench {

// Sustained read bandwidth from DRAM in bytes/s, all threads, over a buffer far larger than the
// last-level cache (best of several passes).
double measure_read_bandwidth(int64_t buffer_bytes = int64_t{1} << 30);

// Peak fp32 FMA rate in FLOP/s (2 per lane per FMA), all threads, register-resident.
double measure_fma_peak();

}  // namespace moeflow::bench
