#pragma once
// The memory-bandwidth ceiling of a GPU, measured, for benchmarks that run outside the CUDA
// kernels' own benchmark (e.g. `moeflow bench decode --device cuda:N`). Built in every build.

namespace moeflow::bench {

// Bytes per second a 1 GiB device-to-device copy moves on CUDA device `device` (read plus
// written, median of 10). Throws moeflow::Error without that device or without CUDA.
double measure_gpu_copy_bandwidth(int device);

}  // namespace moeflow::bench
