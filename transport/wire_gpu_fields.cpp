#include "transport/wire_gpu_fields.h"

#include <cstring>

#include "transport/utf8.h"
#include "transport/wire_codec.h"

namespace moeflow::transport::codec {

zmq::message_t gpu_head_frame(uint64_t generation, uint32_t count) {
  unsigned char head[kGpuHeadFrameBytes] = {};
  std::memcpy(head, &generation, 8);
  std::memcpy(head + 8, &count, 4);
  return zmq::message_t(head, sizeof head);
}

std::optional<DecodeResult> read_gpu_head(const zmq::message_t& frame, const char* count_name,
                                          uint32_t max_count, GpuHead& head) {
  if (frame.size() != kGpuHeadFrameBytes)
    return drop(DropReason::size_mismatch, "head frame is " + u64s(frame.size()) +
                                               " bytes, expected " + u64s(kGpuHeadFrameBytes));
  uint32_t reserved = 0;
  std::memcpy(&head.generation, frame.data(), 8);
  std::memcpy(&head.count, frame.data<char>() + 8, 4);
  std::memcpy(&reserved, frame.data<char>() + 12, 4);
  if (reserved != 0)
    return drop(DropReason::nonzero_reserved, "head frame: reserved word is " + u64s(reserved));
  if (head.count == 0) return drop(DropReason::bad_field, std::string(count_name) + " is 0");
  if (head.count > max_count)
    return drop(DropReason::too_large,
                std::string(count_name) + " " + u64s(head.count) + " over " + u64s(max_count));
  if (head.generation == 0) return drop(DropReason::bad_field, "generation is 0 (they start at 1)");
  return std::nullopt;
}

std::optional<DecodeResult> check_gpu_node_name(std::string_view name, const std::string& where) {
  if (name.size() > kMaxNodeNameBytes)
    return drop(DropReason::too_large, where + "node name is " + u64s(name.size()) +
                                           " bytes, over " + u64s(kMaxNodeNameBytes));
  if (!is_valid_utf8(name) || !is_valid_node_name(name))
    return drop(DropReason::bad_text,
                where + "node name is empty or has characters outside [A-Za-z0-9._:-]");
  return std::nullopt;
}

std::optional<DecodeResult> check_gpu_device(int64_t device, const std::string& where) {
  if (device < 0 || device >= int64_t{kGpuDeviceIndexLimit})
    return drop(DropReason::bad_field, where + "device " + std::to_string(device) +
                                           " out of range (0.." + u64s(kGpuDeviceIndexLimit - 1) +
                                           ")");
  return std::nullopt;
}

}  // namespace moeflow::transport::codec
