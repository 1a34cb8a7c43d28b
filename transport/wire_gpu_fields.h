#pragma once
// What the two GPU group kinds of the wire codec share (gpu_group in wire_gpu_group.cpp,
// gpu_group_ready in wire_gpu_group_ready.cpp) and nothing else uses: the 16-byte head frame
// [generation: u64][count: u32][reserved: u32 = 0] and the checks of a node name and a CUDA
// device index, each as a drop with a detail naming the field.
#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "transport/wire_format.h"

namespace moeflow::transport::codec {

inline constexpr size_t kGpuHeadFrameBytes = 16;  // generation, count, reserved

// The head frame. `count` is nranks (gpu_group) or the answering node's devices (gpu_group_ready).
zmq::message_t gpu_head_frame(uint64_t generation, uint32_t count);

struct GpuHead {
  uint64_t generation = 0;
  uint32_t count = 0;
};

// Decodes and checks a head frame: its size (size_mismatch), the reserved word
// (nonzero_reserved), generation 0 and count 0 (bad_field), count over `max_count` (too_large).
// `count_name` ("nranks", "devices") names the count in the details.
std::optional<DecodeResult> read_gpu_head(const zmq::message_t& frame, const char* count_name,
                                          uint32_t max_count, GpuHead& head);

// A node name of the hello rule: over 64 bytes (too_large), empty or with characters outside
// [A-Za-z0-9._:-] (bad_text). `where` ("rank 2: ") prefixes the detail.
std::optional<DecodeResult> check_gpu_node_name(std::string_view name, const std::string& where);

// A CUDA device index of the graph's "cuda:N": 0..kGpuDeviceIndexLimit-1 (bad_field).
std::optional<DecodeResult> check_gpu_device(int64_t device, const std::string& where);

}  // namespace moeflow::transport::codec
