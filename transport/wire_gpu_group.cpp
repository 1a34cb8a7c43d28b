// The gpu_group kind of the wire codec: the controller's announcement of the NCCL group of the
// GPU shards (docs/wire-format.md, docs/nccl.md). Body frames:
//   [generation: u64][nranks: u32][reserved: u32 = 0]  (the head frame, wire_gpu_fields.h)
//   [unique id: 128 bytes, opaque]
//   [members: nranks records of rank u32, device u32, name length u32, name (64 bytes, the unused
//    tail zero)]
#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "core/error.h"
#include "transport/wire_codec.h"
#include "transport/wire_format.h"
#include "transport/wire_gpu_fields.h"

namespace moeflow::transport {

namespace {

using codec::check_gpu_device;
using codec::check_gpu_node_name;
using codec::drop;
using codec::u64s;

struct MemberRecord {
  uint32_t rank = 0;
  uint32_t device = 0;
  uint32_t name_bytes = 0;
  char name[kMaxNodeNameBytes] = {};
};
static_assert(sizeof(MemberRecord) == kGpuGroupMemberBytes);

std::string member_text(const GpuGroupMember& m) {
  return m.node + " cuda:" + std::to_string(m.device);
}

// What both sides require of a group: the encoder throws with the detail, the decoder drops.
std::optional<DecodeResult> check_group(const GpuGroup& g) {
  if (g.generation == 0) return drop(DropReason::bad_field, "generation is 0 (they start at 1)");
  if (g.members.empty()) return drop(DropReason::bad_field, "nranks is 0");
  if (g.members.size() > kMaxGpuGroupRanks)
    return drop(DropReason::too_large,
                "nranks " + u64s(g.members.size()) + " over " + u64s(kMaxGpuGroupRanks));
  if (std::all_of(g.unique_id.begin(), g.unique_id.end(), [](uint8_t b) { return b == 0; }))
    return drop(DropReason::bad_field, "unique id is all zero (no ncclGetUniqueId behind it)");
  std::set<std::pair<std::string, int32_t>> seen;
  for (size_t r = 0; r < g.members.size(); ++r) {
    const GpuGroupMember& m = g.members[r];
    const std::string where = "rank " + u64s(r) + ": ";
    if (auto bad = check_gpu_node_name(m.node, where)) return bad;
    if (auto bad = check_gpu_device(m.device, where)) return bad;
    // NCCL refuses two ranks of one communicator on one GPU.
    if (!seen.emplace(m.node, m.device).second)
      return drop(DropReason::bad_field,
                  "rank " + u64s(r) + ": " + member_text(m) + " holds another rank already");
  }
  return std::nullopt;
}

}  // namespace

std::vector<zmq::message_t> encode_gpu_group(uint64_t request_id, const GpuGroup& group,
                                             const Origin& origin) {
  if (auto bad = check_group(group)) throw Error("encode_gpu_group: " + bad->detail);
  std::vector<zmq::message_t> frames;
  frames.reserve(4);
  frames.push_back(
      codec::header_frame(codec::make_header(MessageKind::gpu_group, origin, request_id)));
  frames.push_back(
      codec::gpu_head_frame(group.generation, static_cast<uint32_t>(group.members.size())));
  frames.emplace_back(group.unique_id.data(), group.unique_id.size());
  std::vector<MemberRecord> records(group.members.size());
  for (size_t r = 0; r < records.size(); ++r) {
    records[r].rank = static_cast<uint32_t>(r);
    records[r].device = static_cast<uint32_t>(group.members[r].device);
    records[r].name_bytes = static_cast<uint32_t>(group.members[r].node.size());
    std::memcpy(records[r].name, group.members[r].node.data(), group.members[r].node.size());
  }
  frames.emplace_back(records.data(), records.size() * sizeof(MemberRecord));
  return frames;
}

namespace codec {

DecodeResult decode_gpu_group(const WireHeader& h, const std::vector<zmq::message_t>& frames) {
  if (auto bad = check_unused_zero(h, true, true, true, true, true)) return *bad;
  GpuHead head;
  if (auto bad = read_gpu_head(frames[1], "nranks", kMaxGpuGroupRanks, head)) return *bad;
  const uint32_t nranks = head.count;
  GpuGroup group;
  group.generation = head.generation;
  if (frames[2].size() != kNcclUniqueIdBytes)
    return drop(DropReason::size_mismatch, "unique id frame is " + u64s(frames[2].size()) +
                                               " bytes, expected " + u64s(kNcclUniqueIdBytes));
  // nranks is bounded, so the product cannot overflow.
  const uint64_t members_bytes = uint64_t{nranks} * kGpuGroupMemberBytes;
  if (frames[3].size() != members_bytes)
    return drop(DropReason::size_mismatch, "members frame is " + u64s(frames[3].size()) +
                                               " bytes, " + u64s(nranks) + " ranks imply " +
                                               u64s(members_bytes));
  std::memcpy(group.unique_id.data(), frames[2].data(), kNcclUniqueIdBytes);

  // Each rank exactly once: nranks records with distinct ranks below nranks are dense.
  group.members.resize(nranks);
  std::vector<bool> listed(nranks, false);
  for (uint32_t i = 0; i < nranks; ++i) {
    MemberRecord rec;
    std::memcpy(&rec, frames[3].data<char>() + uint64_t{i} * kGpuGroupMemberBytes, sizeof rec);
    const std::string where = "member record " + u64s(i);
    if (rec.rank >= nranks)
      return drop(DropReason::bad_field, where + ": rank " + u64s(rec.rank) +
                                             " out of range (nranks " + u64s(nranks) + ")");
    if (listed[rec.rank])
      return drop(DropReason::bad_field, where + ": rank " + u64s(rec.rank) + " listed twice");
    listed[rec.rank] = true;
    if (rec.name_bytes > kMaxNodeNameBytes)
      return drop(DropReason::too_large, where + ": node name is " + u64s(rec.name_bytes) +
                                             " bytes, over " + u64s(kMaxNodeNameBytes));
    for (size_t b = rec.name_bytes; b < kMaxNodeNameBytes; ++b)
      if (rec.name[b] != 0)
        return drop(DropReason::nonzero_reserved,
                    where + ": byte " + u64s(b) + " after the node name is not 0");
    if (auto bad = check_gpu_device(rec.device, where + ": ")) return *bad;
    group.members[rec.rank] = {std::string(rec.name, rec.name_bytes),
                               static_cast<int32_t>(rec.device)};
  }
  if (auto bad = check_group(group)) return *bad;
  DecodeResult r;
  r.message = Message{h, std::move(group)};
  return r;
}

}  // namespace codec

}  // namespace moeflow::transport
