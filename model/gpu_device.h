#pragma once
// What the GPU stages of model/ (gpu_expert_stage, gpu_router_stage, gpu_kv_cache) share on the
// host: the refusal of a device this process lacks, and the bf16 bits of a weight matrix for
// upload. Built with or without CUDA (no CUDA types here); model/gpu_buffer.h has the device side.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace moeflow {

// Throws moeflow::Error "<who>: no CUDA device cuda:N (<reason or how many this process sees>)"
// unless GPU `device` exists. The same refusal with or without CUDA.
void require_cuda_device(int device, const std::string& who);

// bf16 bits of a weight matrix: its own data when stored as bf16, else a copy rounded to nearest
// even (kernels::f32_to_bf16, as torch rounds) appended to `keep`, which must outlive the use.
const uint16_t* bf16_bits(const kernels::Matrix& m, std::vector<std::vector<uint16_t>>& keep);

}  // namespace moeflow
