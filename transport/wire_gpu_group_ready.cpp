// The gpu_group_ready kind of the wire codec: a member node's answer to a gpu_group, how forming
// went on each of its member devices (docs/wire-format.md, docs/nccl.md). Body frames:
//   [generation: u64][devices: u32][reserved: u32 = 0]  (the head frame, wire_gpu_fields.h)
//   [node name: 1..64 bytes]
//   [devices records of device u32, failure length u32 (0: formed)]
//   [the failure texts, in record order, back to back]
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "core/error.h"
#include "transport/utf8.h"
#include "transport/wire_codec.h"
#include "transport/wire_format.h"
#include "transport/wire_gpu_fields.h"

namespace moeflow::transport {

namespace {

using codec::check_gpu_device;
using codec::check_gpu_node_name;
using codec::drop;
using codec::u64s;

struct DeviceRecord {
  uint32_t device = 0;
  uint32_t failure_bytes = 0;
};
static_assert(sizeof(DeviceRecord) == kGpuDeviceOutcomeBytes);

// What both sides require of an answer: the encoder throws with the detail, the decoder drops.
std::optional<DecodeResult> check_ready(const GpuGroupReady& ready) {
  if (ready.generation == 0)
    return drop(DropReason::bad_field, "generation is 0 (they start at 1)");
  if (ready.devices.empty()) return drop(DropReason::bad_field, "devices is 0");
  if (ready.devices.size() > kMaxGpuGroupNodeDevices)
    return drop(DropReason::too_large,
                "devices " + u64s(ready.devices.size()) + " over " + u64s(kMaxGpuGroupNodeDevices));
  if (auto bad = check_gpu_node_name(ready.node, "")) return bad;
  std::set<int32_t> seen;
  for (size_t i = 0; i < ready.devices.size(); ++i) {
    const GpuDeviceOutcome& d = ready.devices[i];
    const std::string where = "device record " + u64s(i) + ": ";
    if (auto bad = check_gpu_device(d.device, where)) return bad;
    if (!seen.insert(d.device).second)
      return drop(DropReason::bad_field,
                  where + "cuda:" + std::to_string(d.device) + " listed twice");
    if (d.failure.size() > kMaxErrorTextBytes)
      return drop(DropReason::too_large, where + "failure text is " + u64s(d.failure.size()) +
                                             " bytes, over " + u64s(kMaxErrorTextBytes));
    if (!is_valid_utf8(d.failure))
      return drop(DropReason::bad_text, where + "failure text is not valid UTF-8");
  }
  return std::nullopt;
}

}  // namespace

std::vector<zmq::message_t> encode_gpu_group_ready(uint64_t request_id, const GpuGroupReady& ready,
                                                   const Origin& origin) {
  GpuGroupReady clean = ready;
  for (GpuDeviceOutcome& d : clean.devices)
    d.failure = sanitize_utf8(d.failure, kMaxErrorTextBytes);
  if (auto bad = check_ready(clean)) throw Error("encode_gpu_group_ready: " + bad->detail);
  std::vector<DeviceRecord> records(clean.devices.size());
  std::string failures;
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].device = static_cast<uint32_t>(clean.devices[i].device);
    records[i].failure_bytes = static_cast<uint32_t>(clean.devices[i].failure.size());
    failures += clean.devices[i].failure;
  }
  std::vector<zmq::message_t> frames;
  frames.reserve(5);
  frames.push_back(
      codec::header_frame(codec::make_header(MessageKind::gpu_group_ready, origin, request_id)));
  frames.push_back(codec::gpu_head_frame(clean.generation, static_cast<uint32_t>(records.size())));
  frames.emplace_back(clean.node.data(), clean.node.size());
  frames.emplace_back(records.data(), records.size() * sizeof(DeviceRecord));
  frames.emplace_back(failures.data(), failures.size());
  return frames;
}

namespace codec {

DecodeResult decode_gpu_group_ready(const WireHeader& h,
                                    const std::vector<zmq::message_t>& frames) {
  if (auto bad = check_unused_zero(h, true, true, true, true, true)) return *bad;
  GpuHead head;
  if (auto bad = read_gpu_head(frames[1], "devices", kMaxGpuGroupNodeDevices, head)) return *bad;
  const std::string_view node(frames[2].data<char>(), frames[2].size());
  if (auto bad = check_gpu_node_name(node, "")) return *bad;
  // devices is bounded, so neither product nor sum can overflow.
  const uint64_t records_bytes = uint64_t{head.count} * kGpuDeviceOutcomeBytes;
  if (frames[3].size() != records_bytes)
    return drop(DropReason::size_mismatch, "device records frame is " + u64s(frames[3].size()) +
                                               " bytes, " + u64s(head.count) + " devices imply " +
                                               u64s(records_bytes));
  std::vector<DeviceRecord> records(head.count);
  std::memcpy(records.data(), frames[3].data(), records_bytes);
  uint64_t failures_bytes = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string where = "device record " + u64s(i) + ": ";
    if (auto bad = check_gpu_device(records[i].device, where)) return *bad;
    if (records[i].failure_bytes > kMaxErrorTextBytes)
      return drop(DropReason::too_large, where + "failure text is " +
                                             u64s(records[i].failure_bytes) + " bytes, over " +
                                             u64s(kMaxErrorTextBytes));
    failures_bytes += records[i].failure_bytes;
  }
  if (frames[4].size() != failures_bytes)
    return drop(DropReason::size_mismatch, "failure texts frame is " + u64s(frames[4].size()) +
                                               " bytes, the records imply " + u64s(failures_bytes));
  GpuGroupReady ready;
  ready.generation = head.generation;
  ready.node.assign(node);
  ready.devices.resize(records.size());
  const char* text = frames[4].data<char>();
  for (size_t i = 0; i < records.size(); ++i) {
    ready.devices[i].device = static_cast<int32_t>(records[i].device);
    if (records[i].failure_bytes == 0) continue;  // formed (and the frame may have no data)
    ready.devices[i].failure.assign(text, records[i].failure_bytes);
    text += records[i].failure_bytes;
  }
  // Devices listed twice and failure texts that are not UTF-8.
  if (auto bad = check_ready(ready)) return *bad;
  DecodeResult r;
  r.message = Message{h, std::move(ready)};
  return r;
}

}  // namespace codec

}  // namespace moeflow::transport
