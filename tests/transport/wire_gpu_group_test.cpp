// The gpu_group kind: the NCCL group round-trips with its ranks in order, and every malformed
// announcement is dropped with the reason and a detail naming the field.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/transport/wire_test_util.h"
#include "transport/wire_format.h"

namespace moeflow::transport {
namespace {

using test_util::expect_drop;
using test_util::small_limits;
using test_util::to_bytes;
using test_util::to_frames;
using test_util::with_frame;
using test_util::with_header;

GpuGroup three_ranks() {
  GpuGroup g;
  g.generation = 7;
  for (size_t i = 0; i < g.unique_id.size(); ++i) g.unique_id[i] = static_cast<uint8_t>(i * 37 + 1);
  g.members = {{"router", 0}, {"experts-a", 0}, {"experts-a", 3}};
  return g;
}

// The members frame's record `i`, as raw fields.
struct Record {
  uint32_t rank, device, name_bytes;
  char name[kMaxNodeNameBytes];
};
static_assert(sizeof(Record) == kGpuGroupMemberBytes);

std::vector<zmq::message_t> with_record(const GpuGroup& g, size_t i,
                                        const std::function<void(Record&)>& edit) {
  auto bytes = to_bytes(encode_gpu_group(1, g));
  Record rec;
  std::memcpy(&rec, bytes[3].data() + i * sizeof rec, sizeof rec);
  edit(rec);
  std::memcpy(bytes[3].data() + i * sizeof rec, &rec, sizeof rec);
  return to_frames(bytes);
}

std::string group_frame(uint64_t generation, uint32_t nranks, uint32_t reserved = 0) {
  std::string f(16, '\0');
  std::memcpy(f.data(), &generation, 8);
  std::memcpy(f.data() + 8, &nranks, 4);
  std::memcpy(f.data() + 12, &reserved, 4);
  return f;
}

TEST(WireGpuGroup, RoundTripsWithRanksInOrder) {
  const GpuGroup sent = three_ranks();
  const auto frames = encode_gpu_group(99, sent, {4, 0xfeed});
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[2].size(), kNcclUniqueIdBytes);
  EXPECT_EQ(frames[3].size(), 3 * kGpuGroupMemberBytes);
  const DecodeResult r = decode(frames, small_limits());
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.message->kind(), MessageKind::gpu_group);
  EXPECT_EQ(r.message->request_id(), 99u);
  EXPECT_EQ(r.message->header.sender_id, 4u);
  EXPECT_EQ(r.message->header.graph_hash, 0xfeedu);
  const auto& got = std::get<GpuGroup>(r.message->body);
  EXPECT_EQ(got.generation, 7u);
  EXPECT_EQ(got.unique_id, sent.unique_id);
  EXPECT_EQ(got.members, sent.members);
  EXPECT_EQ(got.ranks_of("experts-a"), (std::vector<int>{1, 2}));
  EXPECT_EQ(message_kind_name(MessageKind::gpu_group), "gpu_group");
}

TEST(WireGpuGroup, OneRankAndTheLargestGroupRoundTrip) {
  GpuGroup one = three_ranks();
  one.members = {{"n", 0}};
  ASSERT_TRUE(decode(encode_gpu_group(1, one), small_limits()).ok());

  GpuGroup most = three_ranks();
  most.members.clear();
  const std::string long_name(kMaxNodeNameBytes, 'x');
  for (uint32_t r = 0; r < kMaxGpuGroupRanks; ++r)
    most.members.push_back(
        {r == 0 ? long_name : "node-" + std::to_string(r / 8), static_cast<int32_t>(r % 8)});
  const DecodeResult r = decode(encode_gpu_group(1, most), small_limits());
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(std::get<GpuGroup>(r.message->body).members, most.members);
}

TEST(WireGpuGroup, RanksMayArriveInAnyOrder) {
  // Records are keyed by their rank, not by their position.
  auto bytes = to_bytes(encode_gpu_group(1, three_ranks()));
  std::string& m = bytes[3];
  const std::string first = m.substr(0, kGpuGroupMemberBytes);
  m.replace(0, kGpuGroupMemberBytes, m.substr(2 * kGpuGroupMemberBytes, kGpuGroupMemberBytes));
  m.replace(2 * kGpuGroupMemberBytes, kGpuGroupMemberBytes, first);
  const DecodeResult r = decode(to_frames(bytes), small_limits());
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(std::get<GpuGroup>(r.message->body).members, three_ranks().members);
}

TEST(WireGpuGroup, EncoderRefusesWhatWouldNotDecode) {
  const auto refused = [](const GpuGroup& g, const std::string& part) {
    test_util::expect_encoder_refuses([&] { encode_gpu_group(1, g); }, part);
  };
  GpuGroup g = three_ranks();
  g.generation = 0;
  refused(g, "generation is 0");
  g = three_ranks();
  g.members.clear();
  refused(g, "nranks is 0");
  g = three_ranks();
  g.unique_id.fill(0);
  refused(g, "unique id is all zero");
  g = three_ranks();
  g.members[1].node = "bad name";
  refused(g, "rank 1: node name");
  g.members[1].node = std::string(kMaxNodeNameBytes + 1, 'a');
  refused(g, "over 64");
  g = three_ranks();
  g.members[2].device = -1;
  refused(g, "rank 2: device -1 out of range");
  g.members[2].device = static_cast<int32_t>(kGpuDeviceIndexLimit);
  refused(g, "out of range");
  g = three_ranks();
  g.members[2] = g.members[1];
  refused(g, "rank 2: experts-a cuda:0 holds another rank already");
  g = three_ranks();
  g.members.resize(kMaxGpuGroupRanks + 1, {"x", 0});
  refused(g, "over 1024");
}

TEST(WireGpuGroupDrop, HeaderFieldsAndFrameSizes) {
  const auto good = encode_gpu_group(1, three_ranks());
  expect_drop(with_header(good, [](WireHeader& h) { h.rows = 3; }), DropReason::bad_field,
              "rows is 3, must be 0 for gpu_group");
  expect_drop(with_header(good, [](WireHeader& h) { h.frame_count = 2; }), DropReason::frame_count,
              "frames follow");
  expect_drop(with_frame(good, 1, group_frame(7, 3).substr(0, 15)), DropReason::size_mismatch,
              "head frame is 15 bytes");
  expect_drop(with_frame(good, 2, std::string(127, '\x01')), DropReason::size_mismatch,
              "unique id frame is 127 bytes");
  expect_drop(with_frame(good, 3, to_bytes(good)[3] + "x"), DropReason::size_mismatch,
              "3 ranks imply 228");
}

TEST(WireGpuGroupDrop, GenerationRankCountAndUniqueId) {
  const auto good = encode_gpu_group(1, three_ranks());
  expect_drop(with_frame(good, 1, group_frame(0, 3)), DropReason::bad_field, "generation is 0");
  expect_drop(with_frame(good, 1, group_frame(7, 3, 1)), DropReason::nonzero_reserved,
              "reserved word");
  expect_drop(with_frame(good, 1, group_frame(7, 0)), DropReason::bad_field, "nranks is 0");
  // A huge rank count is refused before the members frame is looked at.
  expect_drop(with_frame(good, 1, group_frame(7, 0xffffffffu)), DropReason::too_large,
              "nranks 4294967295 over 1024");
  // More ranks than records: the frame size says so.
  expect_drop(with_frame(good, 1, group_frame(7, 4)), DropReason::size_mismatch, "4 ranks imply");
  expect_drop(with_frame(good, 2, std::string(kNcclUniqueIdBytes, '\0')), DropReason::bad_field,
              "unique id is all zero");
}

TEST(WireGpuGroupDrop, RanksMustBeUniqueAndDense) {
  const GpuGroup g = three_ranks();
  expect_drop(with_record(g, 1, [](Record& r) { r.rank = 3; }), DropReason::bad_field,
              "member record 1: rank 3 out of range (nranks 3)");
  expect_drop(with_record(g, 2, [](Record& r) { r.rank = 0; }), DropReason::bad_field,
              "member record 2: rank 0 listed twice");
}

TEST(WireGpuGroupDrop, NamesAndDevices) {
  const GpuGroup g = three_ranks();
  expect_drop(with_record(g, 0, [](Record& r) { r.name_bytes = 65; }), DropReason::too_large,
              "member record 0: node name is 65 bytes, over 64");
  expect_drop(with_record(g, 0, [](Record& r) { r.name_bytes = 0; }), DropReason::nonzero_reserved,
              "byte 0 after the node name");
  expect_drop(with_record(g, 0, [](Record& r) { r.name[40] = 'z'; }), DropReason::nonzero_reserved,
              "byte 40 after the node name is not 0");
  expect_drop(with_record(g, 0, [](Record& r) { r.name[1] = '\xff'; }), DropReason::bad_text,
              "rank 0: node name");
  expect_drop(with_record(g, 1,
                          [](Record& r) {
                            r.name_bytes = 0;
                            std::memset(r.name, 0, sizeof r.name);
                          }),
              DropReason::bad_text, "rank 1: node name is empty");
  expect_drop(with_record(g, 0, [](Record& r) { r.name[2] = ' '; }), DropReason::bad_text,
              "characters outside");
  expect_drop(with_record(g, 2, [](Record& r) { r.device = kGpuDeviceIndexLimit; }),
              DropReason::bad_field, "member record 2: device 10000 out of range");
  // Two ranks on one GPU: NCCL would refuse (or hang).
  expect_drop(with_record(g, 2, [](Record& r) { r.device = 0; }), DropReason::bad_field,
              "rank 2: experts-a cuda:0 holds another rank already");
}

}  // namespace
}  // namespace moeflow::transport
