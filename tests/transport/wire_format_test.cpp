// Wire format: every kind round-trips; every malformed message is dropped with the right reason
// and a detail naming the field, without throwing and without allocating what a header claims.
#include "transport/wire_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/transport/wire_test_util.h"

namespace moeflow::transport {
namespace {

using test_util::bytes_of;
using test_util::expect_drop;
using test_util::make_batch;
using test_util::small_limits;
using test_util::to_frames;
using test_util::with_frame;
using test_util::with_header;

void expect_same_batch(const TokenBatch& a, const TokenBatch& b) {
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.seq_ids, b.seq_ids);
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.weights, b.weights);
}

std::vector<zmq::message_t> good_request(int64_t rows = 3) {
  return encode_expert_request(42, make_batch(rows, 8, 2, 1, 7));
}

// ---- round trips ----------------------------------------------------------------------------

TEST(WireFormat, HeaderIsSixtyFourBytesWithMagicFirst) {
  const auto frames = encode_heartbeat({3, 0xabcdef});
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].size(), 64u);
  EXPECT_EQ(std::string(frames[0].data<char>(), 4), "MOEF");
  EXPECT_EQ(frames[0].data<unsigned char>()[4], 1);  // version 1, little-endian
  EXPECT_EQ(frames[0].data<unsigned char>()[5], 0);
}

TEST(WireFormat, ExpertRequestRoundTripsOneRowAndRaggedSizes) {
  const struct {
    int64_t rows, top_k, layer;
  } cases[] = {{1, 1, 0}, {1, 4, 3}, {3, 2, 1}, {7, 3, 2}, {64, 4, 3}};
  uint64_t id = 1000;
  for (const auto& c : cases) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " top_k " + std::to_string(c.top_k));
    const TokenBatch batch = make_batch(c.rows, 8, c.top_k, c.layer, id);
    const auto frames = encode_expert_request(id, batch, {5, 0x1234});
    ASSERT_EQ(frames.size(), 6u);
    const DecodeResult r = decode(frames, small_limits());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.message->kind(), MessageKind::expert_request);
    EXPECT_EQ(r.message->request_id(), id);
    EXPECT_EQ(r.message->header.sender_id, 5u);
    EXPECT_EQ(r.message->header.graph_hash, 0x1234u);
    expect_same_batch(std::get<TokenBatch>(r.message->body), batch);
    ++id;
  }
}

TEST(WireFormat, ZeroCopyRequestKeepsTheBatchAliveUntilSent) {
  auto batch = std::make_shared<const TokenBatch>(make_batch(5, 8, 2, 2, 9));
  const TokenBatch copy = *batch;
  std::weak_ptr<const TokenBatch> watch = batch;
  {
    auto frames = encode_expert_request(uint64_t{1} << 40, std::move(batch));
    EXPECT_FALSE(watch.expired());  // the frames hold it
    const DecodeResult r = decode(frames, small_limits());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.message->request_id(), uint64_t{1} << 40);
    expect_same_batch(std::get<TokenBatch>(r.message->body), copy);
  }
  EXPECT_TRUE(watch.expired());  // released with the last frame
}

TEST(WireFormat, ExpertReplyRoundTrips) {
  for (const bool zero_copy : {false, true}) {
    auto reply = std::make_shared<ExpertReply>();
    reply->layer = 3;
    reply->hidden_size = 8;
    for (int i = 0; i < 5 * 8; ++i) reply->out.push_back(0.25f * i - 3);
    reply->computed_pairs = 17;
    const auto frames = zero_copy
                            ? encode_expert_reply(77, std::shared_ptr<const ExpertReply>(reply))
                            : encode_expert_reply(77, *reply, {2, 9});
    const DecodeResult r = decode(frames, small_limits());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.message->kind(), MessageKind::expert_reply);
    EXPECT_EQ(r.message->request_id(), 77u);
    const auto& got = std::get<ExpertReply>(r.message->body);
    EXPECT_EQ(got.layer, 3);
    EXPECT_EQ(got.hidden_size, 8);
    EXPECT_EQ(got.size(), 5);
    EXPECT_EQ(got.out, reply->out);
    EXPECT_EQ(got.computed_pairs, 17u);
  }
}

TEST(WireFormat, ReplyViewKeepsItsOwnerAliveUntilSent) {
  struct Output {  // stands for an actor's ExpertOutput
    std::vector<float> rows = std::vector<float>(3 * 8, 1.5f);
  };
  auto owner = std::make_shared<const Output>();
  std::weak_ptr<const Output> watch = owner;
  {
    const ExpertReplyView view{2, 8, owner->rows, 24};
    auto frames = encode_expert_reply(9, view, std::move(owner));
    EXPECT_FALSE(watch.expired());
    EXPECT_EQ(frames[1].data(), static_cast<const void*>(watch.lock()->rows.data()));  // no copy
    const DecodeResult r = decode(frames, small_limits());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(std::get<ExpertReply>(r.message->body).out, std::vector<float>(24, 1.5f));
    EXPECT_EQ(std::get<ExpertReply>(r.message->body).computed_pairs, 24u);
  }
  EXPECT_TRUE(watch.expired());
}

TEST(WireFormat, HelloAndHelloAckRoundTrip) {
  const Hello hello{"experts-a.node:1", 7, 0xfeedfacecafebeef, 0x0123456789abcdef};
  for (const MessageKind kind : {MessageKind::hello, MessageKind::hello_ack}) {
    const auto frames = kind == MessageKind::hello ? encode_hello(hello) : encode_hello_ack(hello);
    const DecodeResult r = decode(frames, small_limits());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.message->kind(), kind);
    const auto& got = std::get<Hello>(r.message->body);
    EXPECT_EQ(got.node_name, hello.node_name);
    EXPECT_EQ(got.node_id, 7u);
    EXPECT_EQ(got.graph_hash, hello.graph_hash);
    EXPECT_EQ(got.model_hash, hello.model_hash);
  }
}

TEST(WireFormat, HeartbeatByeAndErrorRoundTrip) {
  const DecodeResult hb = decode(encode_heartbeat({4, 99}), small_limits());
  ASSERT_TRUE(hb.ok()) << hb.detail;
  EXPECT_EQ(hb.message->kind(), MessageKind::heartbeat);
  EXPECT_EQ(hb.message->header.sender_id, 4u);
  EXPECT_EQ(hb.message->header.graph_hash, 99u);

  const DecodeResult bye = decode(encode_bye({4, 99}), small_limits());
  ASSERT_TRUE(bye.ok()) << bye.detail;
  EXPECT_EQ(bye.message->kind(), MessageKind::bye);

  const std::string text = "layer 3 expert 12: not held here — größe ✓";
  const DecodeResult err = decode(encode_error(55, ErrorCode::bad_request, text), small_limits());
  ASSERT_TRUE(err.ok()) << err.detail;
  EXPECT_EQ(err.message->kind(), MessageKind::error);
  EXPECT_EQ(err.message->request_id(), 55u);
  EXPECT_EQ(std::get<ErrorMessage>(err.message->body).code, ErrorCode::bad_request);
  EXPECT_EQ(std::get<ErrorMessage>(err.message->body).text, text);
}

TEST(WireFormat, ReplicaControlRoundTrips) {
  for (MessageKind kind :
       {MessageKind::replica_add, MessageKind::replica_drop, MessageKind::replica_ready}) {
    const ReplicaControl sent{3, 15, kind == MessageKind::replica_ready ? "no memory ✓" : ""};
    const DecodeResult r = decode(encode_replica_control(kind, 77, sent, {2, 5}), small_limits());
    ASSERT_TRUE(r.ok()) << message_kind_name(kind) << ": " << r.detail;
    EXPECT_EQ(r.message->kind(), kind);
    EXPECT_EQ(r.message->request_id(), 77u);
    EXPECT_EQ(r.message->header.graph_hash, 5u);
    const auto& got = std::get<ReplicaControl>(r.message->body);
    EXPECT_EQ(got.layer, 3);
    EXPECT_EQ(got.expert, 15);
    EXPECT_EQ(got.failure, sent.failure);
  }
  EXPECT_THROW(encode_replica_control(MessageKind::hello, 1, {}), Error);
  EXPECT_THROW(encode_replica_control(MessageKind::replica_add, 1, {0, -1, ""}), Error);
}

TEST(WireFormatDrop, ReplicaControlOutOfRange) {
  const auto add = encode_replica_control(MessageKind::replica_add, 1, {1, 2, ""});
  expect_drop(with_header(add, [](WireHeader& h) { h.layer = 4; }), DropReason::bad_field);
  expect_drop(with_header(add, [](WireHeader& h) { h.rows = 1; }), DropReason::bad_field);
  for (const int32_t bad : {16, -1, INT32_MIN})
    expect_drop(with_frame(add, 1, std::string(reinterpret_cast<const char*>(&bad), 4)),
                DropReason::bad_field);
  expect_drop(with_frame(add, 1, "abc"), DropReason::size_mismatch);
  const auto ready = encode_replica_control(MessageKind::replica_ready, 1, {1, 2, "x"});
  expect_drop(with_frame(ready, 2, "\xc0\xaf"), DropReason::bad_text);
  auto short_ready = test_util::to_bytes(ready);
  short_ready.pop_back();
  expect_drop(test_util::to_frames(short_ready), DropReason::frame_count);
}

TEST(WireFormat, ErrorTextIsCutAtACharacterBoundaryAndCleaned) {
  std::string long_text(kMaxErrorTextBytes - 1, 'x');
  long_text += "é and more";  // the two-byte character would straddle the limit
  const DecodeResult r = decode(encode_error(1, ErrorCode::internal, long_text), small_limits());
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(std::get<ErrorMessage>(r.message->body).text, std::string(kMaxErrorTextBytes - 1, 'x'));

  const DecodeResult bad =
      decode(encode_error(1, ErrorCode::internal, "bad \xff\xfe byte"), small_limits());
  ASSERT_TRUE(bad.ok()) << bad.detail;
  EXPECT_EQ(std::get<ErrorMessage>(bad.message->body).text, "bad ?? byte");
}

TEST(WireFormat, EncoderRefusesInconsistentInput) {
  TokenBatch b = make_batch(3, 8, 2, 1, 1);
  b.weights.pop_back();
  EXPECT_THROW(encode_expert_request(1, b), Error);
  EXPECT_THROW(encode_expert_request(1, TokenBatch{}), Error);  // no rows
  TokenBatch negative = make_batch(1, 8, 2, 1, 1);
  negative.layer = -1;
  EXPECT_THROW(encode_expert_request(1, negative), Error);
  EXPECT_THROW(encode_hello(Hello{"has space", 0, 0, 0}), Error);
  EXPECT_THROW(encode_hello(Hello{"", 0, 0, 0}), Error);
  ExpertReply ragged;
  ragged.hidden_size = 8;
  ragged.out.resize(12);
  EXPECT_THROW(encode_expert_reply(1, ragged), Error);
  try {
    encode_expert_request(1, b);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weights"), std::string::npos) << e.what();
  }
}

TEST(WireFormat, NamesForMetricLabels) {
  EXPECT_EQ(drop_reason_name(DropReason::bad_magic), "bad_magic");
  EXPECT_EQ(drop_reason_name(DropReason::nonzero_reserved), "nonzero_reserved");
  EXPECT_EQ(message_kind_name(MessageKind::expert_reply), "expert_reply");
  EXPECT_EQ(error_code_name(ErrorCode::incompatible_peer), "incompatible_peer");
  for (size_t i = 0; i < kDropReasonCount; ++i)
    EXPECT_NE(drop_reason_name(static_cast<DropReason>(i)), "unknown") << i;
}

TEST(WireFormat, LargestFrameFollowsTheLimits) {
  DecodeLimits l = small_limits();
  EXPECT_EQ(largest_frame_bytes(l), kMaxGpuGroupRanks * kGpuGroupMemberBytes);  // gpu_group's
  l.max_rows = 4096;
  EXPECT_EQ(largest_frame_bytes(l), 4096u * 8 * 4);  // a full rows frame
  l.hidden = 4096;
  l.max_rows = 1 << 20;
  EXPECT_EQ(largest_frame_bytes(l), l.max_frame_bytes);  // capped
}

// ---- drops ----------------------------------------------------------------------------------

TEST(WireFormatDrop, EmptyMessageAndGarbage) {
  expect_drop({}, DropReason::empty_message);
  expect_drop(to_frames({"hello, world! this is not a moeflow header at all, 64 bytes...."}),
              DropReason::bad_magic);
  expect_drop(to_frames({""}), DropReason::truncated_header);
  expect_drop(to_frames({std::string(64, '\0')}), DropReason::bad_magic);
}

TEST(WireFormatDrop, TruncatedOrLongHeader) {
  const std::string head = good_request()[0].to_string();
  expect_drop(to_frames({head.substr(0, 3)}), DropReason::truncated_header);
  expect_drop(to_frames({head.substr(0, 63)}), DropReason::truncated_header);
  expect_drop(with_frame(good_request(), 0, head + "x"), DropReason::size_mismatch);
}

TEST(WireFormatDrop, WrongMagicVersionKind) {
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.magic = 0x46454F4E; }),
              DropReason::bad_magic);
  const auto v2 = expect_drop(with_header(good_request(), [](WireHeader& h) { h.version = 2; }),
                              DropReason::bad_version);
  EXPECT_NE(v2.detail.find("version 2"), std::string::npos) << v2.detail;
  // A future version with a shorter header is still reported as a version mismatch.
  expect_drop(to_frames({good_request()[0].to_string().substr(0, 4) + std::string("\x02\x00", 2)}),
              DropReason::bad_version);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.kind = 0; }), DropReason::bad_kind);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.kind = 13; }),
              DropReason::bad_kind);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.kind = 0xffff; }),
              DropReason::bad_kind);
}

TEST(WireFormatDrop, FrameCountMismatch) {
  auto frames = good_request();
  frames.pop_back();
  expect_drop(frames, DropReason::frame_count);
  auto extra = test_util::to_bytes(good_request());
  extra.push_back("more");
  expect_drop(to_frames(extra), DropReason::frame_count);
  // The header agrees with the frames but not with the kind.
  auto hb = test_util::to_bytes(encode_heartbeat({}));
  hb.push_back("x");
  expect_drop(with_header(to_frames(hb), [](WireHeader& h) { h.frame_count = 1; }),
              DropReason::frame_count);
  // Thousands of frames are refused before any is looked at.
  std::vector<std::string> many(5000, "x");
  many[0] = good_request()[0].to_string();
  expect_drop(to_frames(many), DropReason::frame_count);
}

TEST(WireFormatDrop, TensorFrameSizeMismatch) {
  const auto frames = good_request(3);
  for (size_t i = 1; i < frames.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    const std::string body = frames[i].to_string();
    expect_drop(with_frame(frames, i, body + "abcd"), DropReason::size_mismatch);
    expect_drop(with_frame(frames, i, body.substr(0, body.size() - 1)), DropReason::size_mismatch);
    expect_drop(with_frame(frames, i, ""), DropReason::size_mismatch);
  }
  // The header claims more rows than the frames hold.
  expect_drop(with_header(frames, [](WireHeader& h) { h.rows = 4; }), DropReason::size_mismatch);
  // Reply: out and the computed-pairs frame.
  ExpertReply reply{1, 8, std::vector<float>(16, 1.0f), 2};
  const auto rf = encode_expert_reply(1, reply);
  expect_drop(with_frame(rf, 1, rf[1].to_string() + "x"), DropReason::size_mismatch);
  expect_drop(with_frame(rf, 2, "1234"), DropReason::size_mismatch);
  // Hello's model hash frame.
  expect_drop(with_frame(encode_hello({"a", 0, 0, 0}), 1, "1234567"), DropReason::size_mismatch);
}

TEST(WireFormatDrop, RowsOverTheLimitAreNotAllocated) {
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.rows = 65; }),
              DropReason::too_large);
  // 2^31 rows: with max_rows permitting it, the implied frame (64 GiB) is still over
  // max_frame_bytes; had decode allocated first, this would throw bad_alloc or exhaust memory.
  DecodeLimits wide = small_limits();
  wide.max_rows = UINT32_MAX;
  const auto r = expect_drop(with_header(good_request(), [](WireHeader& h) { h.rows = 1u << 31; }),
                             DropReason::too_large, wide);
  EXPECT_NE(r.detail.find("max_frame_bytes"), std::string::npos) << r.detail;
  // Same with no frame-size limit at all: the small frames do not match, nothing is allocated.
  wide.max_frame_bytes = UINT64_MAX;
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.rows = 1u << 31; }),
              DropReason::size_mismatch, wide);
  // Each received frame is bounded too.
  DecodeLimits tight = small_limits();
  tight.max_frame_bytes = 32;
  expect_drop(good_request(), DropReason::too_large, tight);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.rows = 0; }),
              DropReason::bad_field);
}

TEST(WireFormatDrop, HiddenMismatchAndTopKOverLimit) {
  const auto r =
      expect_drop(encode_expert_request(1, make_batch(2, 16, 2, 1, 3)), DropReason::bad_field);
  EXPECT_NE(r.detail.find("hidden 16"), std::string::npos) << r.detail;
  expect_drop(encode_expert_request(1, make_batch(2, 8, 5, 1, 3)), DropReason::too_large);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.top_k = 0; }),
              DropReason::bad_field);
  ExpertReply reply{1, 4, std::vector<float>(8, 1.0f), 2};
  expect_drop(encode_expert_reply(1, reply), DropReason::bad_field);
}

TEST(WireFormatDrop, LayerAndExpertOutOfRange) {
  expect_drop(encode_expert_request(1, make_batch(2, 8, 2, 4, 3)), DropReason::bad_field);
  ExpertReply reply{4, 8, std::vector<float>(8, 1.0f), 2};
  expect_drop(encode_expert_reply(1, reply), DropReason::bad_field);

  for (const int32_t bad : {16, -2, INT32_MIN, INT32_MAX}) {
    TokenBatch b = make_batch(3, 8, 2, 1, 3);
    b.experts[3] = bad;
    const auto r = expect_drop(encode_expert_request(1, b), DropReason::bad_field);
    EXPECT_NE(r.detail.find("row 1"), std::string::npos) << r.detail;
  }
  TokenBatch edge = make_batch(2, 8, 2, 1, 3);
  edge.experts = {-1, 15, 0, -1};  // the ends of the valid range
  EXPECT_TRUE(decode(encode_expert_request(1, edge), small_limits()).ok());

  TokenBatch negative_position = make_batch(2, 8, 2, 1, 3);
  negative_position.positions[1] = -5;
  expect_drop(encode_expert_request(1, negative_position), DropReason::bad_field);
}

TEST(WireFormatDrop, NonzeroReservedOrFlagsOrUnusedFields) {
  for (int i = 0; i < 8; ++i)
    expect_drop(with_header(good_request(), [i](WireHeader& h) { h.reserved[i] = 1; }),
                DropReason::nonzero_reserved);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.flags = 1; }),
              DropReason::nonzero_reserved);
  expect_drop(with_header(good_request(), [](WireHeader& h) { h.status = 3; }),
              DropReason::bad_field);
  expect_drop(with_header(encode_heartbeat({}), [](WireHeader& h) { h.rows = 1; }),
              DropReason::bad_field);
  expect_drop(with_header(encode_hello({"n", 0, 0, 0}), [](WireHeader& h) { h.layer = 1; }),
              DropReason::bad_field);
}

TEST(WireFormatDrop, BadTextAndNames) {
  const auto err = encode_error(1, ErrorCode::internal, "ok");
  expect_drop(with_frame(err, 1, std::string(kMaxErrorTextBytes + 1, 'a')), DropReason::too_large);
  expect_drop(with_frame(err, 1, "\xc0\xaf overlong"), DropReason::bad_text);
  expect_drop(with_frame(err, 1, "\xed\xa0\x80 surrogate"), DropReason::bad_text);
  expect_drop(with_frame(err, 1, "cut \xe2\x82"), DropReason::bad_text);
  expect_drop(with_header(err, [](WireHeader& h) { h.status = 0; }), DropReason::bad_field);
  expect_drop(with_header(err, [](WireHeader& h) { h.status = 99; }), DropReason::bad_field);

  const auto hello = encode_hello({"node", 0, 0, 0});
  expect_drop(with_frame(hello, 2, ""), DropReason::bad_text);
  expect_drop(with_frame(hello, 2, "bad name"), DropReason::bad_text);
  expect_drop(with_frame(hello, 2, std::string("nul\0x", 5)), DropReason::bad_text);
  expect_drop(with_frame(hello, 2, std::string(kMaxNodeNameBytes + 1, 'n')), DropReason::too_large);
}

}  // namespace
}  // namespace moeflow::transport
