// Random mutations of valid messages (bytes flipped in the header and the frames, header fields
// set to edge values, frames dropped, duplicated, cut or grown): decode never throws or crashes,
// and whatever it accepts is consistent with its own header and within the limits.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/transport/wire_test_util.h"
#include "transport/wire_format.h"

namespace moeflow::transport {
namespace {

using test_util::make_batch;
using test_util::small_limits;

std::vector<std::string> random_valid_message(std::mt19937_64& rng) {
  const uint64_t id = rng();
  switch (rng() % 9) {
    case 0:
    case 1:
      return test_util::to_bytes(encode_expert_request(
          id, make_batch(1 + rng() % 6, 8, 1 + rng() % 4, rng() % 4, rng()), {1, rng()}));
    case 2: {
      ExpertReply r{static_cast<int64_t>(rng() % 4), 8,
                    std::vector<float>(8 * (1 + rng() % 6), 0.5f), rng()};
      return test_util::to_bytes(encode_expert_reply(id, r));
    }
    case 3:
      return test_util::to_bytes(
          encode_hello({"peer-" + std::to_string(rng() % 100), 2, rng(), rng()}));
    case 4:
      return test_util::to_bytes(encode_error(id, ErrorCode::overloaded, "busy: ünïcode"));
    case 5:
      return test_util::to_bytes(encode_replica_control(
          MessageKind::replica_ready, id,
          {static_cast<int64_t>(rng() % 4), static_cast<int32_t>(rng() % 16), "no room"}));
    case 6: {
      GpuGroup g;
      g.generation = 1 + rng() % 1000;
      for (auto& b : g.unique_id) b = static_cast<uint8_t>(rng());
      g.unique_id[0] = 1;  // never all zero
      const size_t n = 1 + rng() % 5;
      for (size_t r = 0; r < n; ++r)
        g.members.push_back({"node-" + std::to_string(r / 2), static_cast<int32_t>(r % 2)});
      return test_util::to_bytes(encode_gpu_group(id, g, {1, rng()}));
    }
    case 7: {
      GpuGroupReady ready;
      ready.generation = 1 + rng() % 1000;
      ready.node = "node-" + std::to_string(rng() % 10);
      const size_t n = 1 + rng() % 4;
      for (size_t d = 0; d < n; ++d)
        ready.devices.push_back(
            {static_cast<int32_t>(d * 2 + rng() % 2),
             rng() % 3 == 0 ? "cuda:" + std::to_string(d) + " failed: ünïcode" : ""});
      return test_util::to_bytes(encode_gpu_group_ready(id, ready, {2, rng()}));
    }
    default:
      return test_util::to_bytes(encode_heartbeat({3, rng()}));
  }
}

void mutate(std::vector<std::string>& frames, std::mt19937_64& rng) {
  if (frames.empty()) {  // an earlier mutation dropped everything: send some bytes
    frames.push_back(std::string(rng() % 80, 'M'));
    return;
  }
  const uint32_t edge[] = {0,  1,  2,  3,  4,          7,          8,         15,
                           16, 63, 64, 65, 0x7fffffff, 0x80000000, 0xffffffff};
  switch (rng() % 8) {
    case 0:
    case 1: {  // flip a header byte
      std::string& h = frames[0];
      if (!h.empty()) h[rng() % h.size()] ^= static_cast<char>(1 + rng() % 255);
      break;
    }
    case 2: {  // set a 32-bit header field to an edge value
      std::string& h = frames[0];
      if (h.size() >= 64) {
        const uint32_t v = edge[rng() % std::size(edge)];
        std::memcpy(h.data() + 4 * (rng() % 16), &v, 4);
      }
      break;
    }
    case 3: {  // flip a byte in a body frame
      std::string& f = frames[rng() % frames.size()];
      if (!f.empty()) f[rng() % f.size()] ^= static_cast<char>(1 + rng() % 255);
      break;
    }
    case 4:  // drop a frame
      if (!frames.empty()) frames.erase(frames.begin() + rng() % frames.size());
      break;
    case 5:  // duplicate a frame
      if (!frames.empty()) {
        const size_t i = rng() % frames.size();
        frames.insert(frames.begin() + i, frames[i]);
      }
      break;
    case 6: {  // cut a frame
      std::string& f = frames[rng() % frames.size()];
      f.resize(f.empty() ? 0 : rng() % f.size());
      break;
    }
    default:  // grow a frame
      frames[rng() % frames.size()].append(1 + rng() % 12, static_cast<char>(rng()));
      break;
  }
}

void expect_consistent(const Message& m, const DecodeLimits& limits) {
  const WireHeader& h = m.header;
  EXPECT_EQ(h.magic, kWireMagic);
  EXPECT_EQ(h.version, kWireVersion);
  EXPECT_EQ(h.flags, 0u);
  for (uint8_t b : h.reserved) EXPECT_EQ(b, 0);
  switch (m.kind()) {
    case MessageKind::expert_request: {
      const auto& b = std::get<TokenBatch>(m.body);
      ASSERT_GE(h.rows, 1u);
      ASSERT_LE(h.rows, limits.max_rows);
      EXPECT_EQ(b.size(), h.rows);
      EXPECT_EQ(b.hidden_size, limits.hidden);
      EXPECT_EQ(b.top_k, h.top_k);
      EXPECT_LE(h.top_k, limits.max_top_k);
      EXPECT_LT(b.layer, limits.num_layers);
      EXPECT_EQ(b.rows.size(), uint64_t{h.rows} * h.hidden);
      EXPECT_EQ(b.experts.size(), uint64_t{h.rows} * h.top_k);
      EXPECT_EQ(b.weights.size(), uint64_t{h.rows} * h.top_k);
      EXPECT_EQ(b.positions.size(), h.rows);
      for (int32_t e : b.experts) EXPECT_TRUE(e == -1 || (e >= 0 && e < 16)) << e;
      for (int32_t p : b.positions) EXPECT_GE(p, 0);
      break;
    }
    case MessageKind::expert_reply: {
      const auto& r = std::get<ExpertReply>(m.body);
      EXPECT_EQ(r.size(), h.rows);
      EXPECT_EQ(r.out.size(), uint64_t{h.rows} * limits.hidden);
      EXPECT_LT(r.layer, limits.num_layers);
      break;
    }
    case MessageKind::hello:
    case MessageKind::hello_ack: {
      const auto& hello = std::get<Hello>(m.body);
      EXPECT_FALSE(hello.node_name.empty());
      EXPECT_LE(hello.node_name.size(), kMaxNodeNameBytes);
      break;
    }
    case MessageKind::error:
      EXPECT_LE(std::get<ErrorMessage>(m.body).text.size(), kMaxErrorTextBytes);
      break;
    case MessageKind::replica_add:
    case MessageKind::replica_drop:
    case MessageKind::replica_ready: {
      const auto& c = std::get<ReplicaControl>(m.body);
      EXPECT_LT(c.layer, limits.num_layers);
      EXPECT_TRUE(c.expert >= 0 && c.expert < 16) << c.expert;
      EXPECT_LE(c.failure.size(), kMaxErrorTextBytes);
      break;
    }
    case MessageKind::gpu_group: {
      const auto& g = std::get<GpuGroup>(m.body);
      EXPECT_GE(g.generation, 1u);
      ASSERT_GE(g.nranks(), 1);
      EXPECT_LE(g.members.size(), kMaxGpuGroupRanks);
      for (size_t r = 0; r < g.members.size(); ++r) {
        EXPECT_FALSE(g.members[r].node.empty());
        EXPECT_LE(g.members[r].node.size(), kMaxNodeNameBytes);
        EXPECT_GE(g.members[r].device, 0);
        EXPECT_LT(static_cast<uint32_t>(g.members[r].device), kGpuDeviceIndexLimit);
        for (size_t q = 0; q < r; ++q) EXPECT_FALSE(g.members[q] == g.members[r]) << r;
      }
      break;
    }
    case MessageKind::gpu_group_ready: {
      const auto& ready = std::get<GpuGroupReady>(m.body);
      EXPECT_GE(ready.generation, 1u);
      ASSERT_GE(ready.devices.size(), 1u);
      EXPECT_LE(ready.devices.size(), kMaxGpuGroupNodeDevices);
      EXPECT_FALSE(ready.node.empty());
      EXPECT_LE(ready.node.size(), kMaxNodeNameBytes);
      for (size_t i = 0; i < ready.devices.size(); ++i) {
        EXPECT_GE(ready.devices[i].device, 0);
        EXPECT_LT(static_cast<uint32_t>(ready.devices[i].device), kGpuDeviceIndexLimit);
        EXPECT_LE(ready.devices[i].failure.size(), kMaxErrorTextBytes);
        for (size_t q = 0; q < i; ++q) EXPECT_NE(ready.devices[q].device, ready.devices[i].device);
      }
      break;
    }
    case MessageKind::heartbeat:
    case MessageKind::bye:
      EXPECT_TRUE(std::holds_alternative<std::monostate>(m.body));
      EXPECT_EQ(h.rows, 0u);
      break;
  }
}

TEST(WireFormatFuzz, RandomMutationsNeverCrashAndAcceptOnlyConsistentMessages) {
  std::mt19937_64 rng(20240611);
  const DecodeLimits limits = small_limits();
  int accepted = 0, rejected = 0;
  std::vector<int> by_reason(kDropReasonCount, 0);
  for (int iteration = 0; iteration < 5000; ++iteration) {
    auto bytes = random_valid_message(rng);
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < mutations; ++k) mutate(bytes, rng);
    const auto frames = test_util::to_frames(bytes);
    DecodeResult r;
    ASSERT_NO_THROW(r = decode(frames, limits)) << "iteration " << iteration;
    if (r.ok()) {
      ++accepted;
      SCOPED_TRACE("iteration " + std::to_string(iteration));
      expect_consistent(*r.message, limits);
    } else {
      ++rejected;
      ++by_reason[static_cast<size_t>(r.reason)];
      EXPECT_FALSE(r.detail.empty());
    }
  }
  // Both outcomes occur (a flipped tensor byte is still a valid message), and the mutations
  // reach the deeper checks, not just the magic.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 2000);
  for (DropReason reason : {DropReason::bad_magic, DropReason::bad_kind, DropReason::frame_count,
                            DropReason::size_mismatch, DropReason::bad_field,
                            DropReason::nonzero_reserved, DropReason::truncated_header})
    EXPECT_GT(by_reason[static_cast<size_t>(reason)], 0) << drop_reason_name(reason);
}

}  // namespace
}  // namespace moeflow::transport
