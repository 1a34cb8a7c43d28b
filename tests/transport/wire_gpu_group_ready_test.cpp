// The gpu_group_ready kind: a node's answer round-trips with each device's outcome, failure texts
// are cut like an error's, and every malformed answer is dropped with the reason and a detail
// naming the field.
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

// experts-a formed cuda:0, failed cuda:3.
GpuGroupReady one_failed() {
  GpuGroupReady r;
  r.generation = 7;
  r.node = "experts-a";
  r.devices = {{0, ""}, {3, "NCCL rank 2 of 3 on cuda:3: not done within 60000 ms ✗"}};
  return r;
}

std::string head_frame(uint64_t generation, uint32_t devices, uint32_t reserved = 0) {
  std::string f(16, '\0');
  std::memcpy(f.data(), &generation, 8);
  std::memcpy(f.data() + 8, &devices, 4);
  std::memcpy(f.data() + 12, &reserved, 4);
  return f;
}

std::string records_frame(const std::vector<std::pair<uint32_t, uint32_t>>& records) {
  std::string f;
  for (auto [device, failure_bytes] : records) {
    f.append(reinterpret_cast<const char*>(&device), 4);
    f.append(reinterpret_cast<const char*>(&failure_bytes), 4);
  }
  return f;
}

GpuGroupReady decoded(const std::vector<zmq::message_t>& frames) {
  const DecodeResult r = decode(frames, small_limits());
  EXPECT_TRUE(r.ok()) << r.detail;
  return r.ok() ? std::get<GpuGroupReady>(r.message->body) : GpuGroupReady{};
}

TEST(WireGpuGroupReady, RoundTripsEachDevicesOutcome) {
  const GpuGroupReady sent = one_failed();
  const auto frames = encode_gpu_group_ready(42, sent, {5, 0xfeed});
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[3].size(), 2 * kGpuDeviceOutcomeBytes);
  const DecodeResult r = decode(frames, small_limits());
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.message->kind(), MessageKind::gpu_group_ready);
  EXPECT_EQ(r.message->request_id(), 42u);
  EXPECT_EQ(r.message->header.sender_id, 5u);
  EXPECT_EQ(r.message->header.graph_hash, 0xfeedu);
  const auto& got = std::get<GpuGroupReady>(r.message->body);
  EXPECT_EQ(got.generation, 7u);
  EXPECT_EQ(got.node, "experts-a");
  EXPECT_EQ(got.devices, sent.devices);
  EXPECT_TRUE(got.devices[0].formed());
  EXPECT_FALSE(got.devices[1].formed());
  EXPECT_FALSE(got.all_formed());
  EXPECT_EQ(message_kind_name(MessageKind::gpu_group_ready), "gpu_group_ready");
}

TEST(WireGpuGroupReady, AllFormedHasAnEmptyTextFrame) {
  GpuGroupReady ok = one_failed();
  ok.devices[1].failure.clear();
  const auto frames = encode_gpu_group_ready(1, ok);
  EXPECT_EQ(frames[4].size(), 0u);
  const GpuGroupReady got = decoded(frames);
  EXPECT_TRUE(got.all_formed());
  EXPECT_EQ(got.devices, ok.devices);
}

TEST(WireGpuGroupReady, TheLargestAnswerRoundTrips) {
  GpuGroupReady most;
  most.generation = ~uint64_t{0};
  most.node = std::string(kMaxNodeNameBytes, 'n');
  for (uint32_t d = 0; d < kMaxGpuGroupNodeDevices; ++d)
    most.devices.push_back({static_cast<int32_t>(kGpuDeviceIndexLimit - 1 - d),
                            std::string(kMaxErrorTextBytes, static_cast<char>('a' + d % 26))});
  const auto frames = encode_gpu_group_ready(1, most);
  EXPECT_LE(frames[4].size(), largest_frame_bytes(small_limits()));
  const GpuGroupReady got = decoded(frames);
  EXPECT_EQ(got.node, most.node);
  EXPECT_EQ(got.devices, most.devices);
}

TEST(WireGpuGroupReady, FailureTextsAreCutLikeAnErrors) {
  GpuGroupReady r = one_failed();
  r.devices[0].failure = std::string(kMaxErrorTextBytes - 1, 'x') + "é";  // cut before the é
  r.devices[1].failure = std::string("bad \xff byte");
  const GpuGroupReady got = decoded(encode_gpu_group_ready(1, r));
  EXPECT_EQ(got.devices[0].failure, std::string(kMaxErrorTextBytes - 1, 'x'));
  EXPECT_EQ(got.devices[1].failure, "bad ? byte");
}

TEST(WireGpuGroupReady, EncoderRefusesWhatWouldNotDecode) {
  const auto refused = [](const GpuGroupReady& r, const std::string& part) {
    test_util::expect_encoder_refuses([&] { encode_gpu_group_ready(1, r); }, part);
  };
  GpuGroupReady r = one_failed();
  r.generation = 0;
  refused(r, "generation is 0");
  r = one_failed();
  r.devices.clear();
  refused(r, "devices is 0");
  r = one_failed();
  r.devices.resize(kMaxGpuGroupNodeDevices + 1);
  refused(r, "devices 65 over 64");
  r = one_failed();
  r.node = "bad name";
  refused(r, "node name is empty or has characters outside");
  r.node = std::string(kMaxNodeNameBytes + 1, 'a');
  refused(r, "node name is 65 bytes, over 64");
  r = one_failed();
  r.devices[1].device = -1;
  refused(r, "device record 1: device -1 out of range");
  r.devices[1].device = static_cast<int32_t>(kGpuDeviceIndexLimit);
  refused(r, "device record 1: device 10000 out of range");
  r = one_failed();
  r.devices[1].device = 0;
  refused(r, "device record 1: cuda:0 listed twice");
}

TEST(WireGpuGroupReadyDrop, HeaderFieldsAndTheHeadFrame) {
  const auto good = encode_gpu_group_ready(1, one_failed());
  expect_drop(with_header(good, [](WireHeader& h) { h.status = 1; }), DropReason::bad_field,
              "status is 1, must be 0 for gpu_group_ready");
  expect_drop(with_header(good, [](WireHeader& h) { h.frame_count = 3; }), DropReason::frame_count,
              "frames follow");
  expect_drop(with_frame(good, 1, head_frame(7, 2).substr(0, 12)), DropReason::size_mismatch,
              "head frame is 12 bytes, expected 16");
  expect_drop(with_frame(good, 1, head_frame(7, 2, 9)), DropReason::nonzero_reserved,
              "reserved word is 9");
  expect_drop(with_frame(good, 1, head_frame(7, 0)), DropReason::bad_field, "devices is 0");
  // A huge device count is refused before the records frame is looked at.
  expect_drop(with_frame(good, 1, head_frame(7, 0xffffffffu)), DropReason::too_large,
              "devices 4294967295 over 64");
  expect_drop(with_frame(good, 1, head_frame(0, 2)), DropReason::bad_field, "generation is 0");
  expect_drop(with_frame(good, 1, head_frame(7, 3)), DropReason::size_mismatch,
              "device records frame is 16 bytes, 3 devices imply 24");
}

TEST(WireGpuGroupReadyDrop, NodeName) {
  const auto good = encode_gpu_group_ready(1, one_failed());
  expect_drop(with_frame(good, 2, ""), DropReason::bad_text, "node name is empty");
  expect_drop(with_frame(good, 2, "experts a"), DropReason::bad_text, "characters outside");
  expect_drop(with_frame(good, 2, "experts-\xc3"), DropReason::bad_text, "node name");
  expect_drop(with_frame(good, 2, std::string(65, 'n')), DropReason::too_large,
              "node name is 65 bytes, over 64");
}

TEST(WireGpuGroupReadyDrop, DeviceRecordsAndFailureTexts) {
  const auto good = encode_gpu_group_ready(1, one_failed());
  const std::string text = to_bytes(good)[4];
  const auto n = static_cast<uint32_t>(text.size());
  expect_drop(with_frame(good, 3, records_frame({{0, 0}, {kGpuDeviceIndexLimit, n}})),
              DropReason::bad_field, "device record 1: device 10000 out of range");
  expect_drop(with_frame(good, 3, records_frame({{3, 0}, {3, n}})), DropReason::bad_field,
              "device record 1: cuda:3 listed twice");
  expect_drop(with_frame(good, 3, records_frame({{0, 1025}, {3, n}})), DropReason::too_large,
              "device record 0: failure text is 1025 bytes, over 1024");
  // The lengths must add up to the texts frame, both ways.
  expect_drop(with_frame(good, 3, records_frame({{0, 1}, {3, n}})), DropReason::size_mismatch,
              "failure texts frame is " + std::to_string(n) + " bytes, the records imply " +
                  std::to_string(n + 1));
  expect_drop(with_frame(good, 4, text + "x"), DropReason::size_mismatch,
              "the records imply " + std::to_string(n));
  std::string bad_utf8 = text;
  bad_utf8[0] = '\xff';
  expect_drop(with_frame(good, 4, bad_utf8), DropReason::bad_text,
              "device record 1: failure text is not valid UTF-8");
  // A record's text may be split anywhere: the lengths decide which device it belongs to.
  const GpuGroupReady moved = decoded(with_frame(good, 3, records_frame({{0, 4}, {3, n - 4}})));
  EXPECT_EQ(moved.devices[0].failure, text.substr(0, 4));
  EXPECT_EQ(moved.devices[1].failure, text.substr(4));
}

}  // namespace
}  // namespace moeflow::transport
