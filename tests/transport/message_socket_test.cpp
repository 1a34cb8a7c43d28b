// Real sockets over TCP loopback in one process: a ROUTER (the expert shard) and DEALERs (the
// router node) exchange hello, an expert request and its reply; an oversized frame is refused
// by ZMQ_MAXMSGSIZE and a malformed message dropped by decode, and the receiver goes on serving.
#include "transport/message_socket.h"

#include <gtest/gtest.h>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/transport/wire_test_util.h"
#include "transport/endpoint.h"
#include "transport/handshake.h"

namespace moeflow::transport {
namespace {

using namespace std::chrono_literals;
using test_util::make_batch;
using test_util::small_limits;

constexpr auto kTimeout = 2000ms;  // only reached on failure

// The expert shard's side of one request: doubles every row and answers the sender.
void serve_one(MessageSocket& shard, uint64_t expected_id) {
  auto in = shard.receive(kTimeout);
  ASSERT_TRUE(in.has_value()) << "no request arrived";
  ASSERT_TRUE(in->result.ok()) << in->result.detail;
  EXPECT_FALSE(in->routing_id.empty());
  ASSERT_EQ(in->result.message->kind(), MessageKind::expert_request);
  EXPECT_EQ(in->result.message->request_id(), expected_id);
  const auto& batch = std::get<TokenBatch>(in->result.message->body);
  ExpertReply reply{batch.layer, batch.hidden_size, batch.rows,
                    uint64_t(batch.size() * batch.top_k)};
  for (float& x : reply.out) x *= 2;
  ASSERT_TRUE(
      shard.send_to(in->routing_id, encode_expert_reply(in->result.message->request_id(), reply)));
}

// Sends a request from `client` (copied into the frames, or zero-copy) and checks the doubled
// reply.
void request_and_check(MessageSocket& client, MessageSocket& shard, uint64_t id, int64_t rows,
                       bool zero_copy = false) {
  auto shared = std::make_shared<const TokenBatch>(make_batch(rows, 8, 2, 1, id));
  const TokenBatch& batch = *shared;
  ASSERT_TRUE(client.send(zero_copy ? encode_expert_request(id, shared)
                                    : encode_expert_request(id, batch)));
  serve_one(shard, id);
  auto back = client.receive(kTimeout);
  ASSERT_TRUE(back.has_value()) << "no reply arrived";
  ASSERT_TRUE(back->result.ok()) << back->result.detail;
  EXPECT_EQ(back->result.message->kind(), MessageKind::expert_reply);
  EXPECT_EQ(back->result.message->request_id(), id);
  const auto& reply = std::get<ExpertReply>(back->result.message->body);
  ASSERT_EQ(reply.size(), rows);
  for (size_t i = 0; i < reply.out.size(); ++i) ASSERT_EQ(reply.out[i], 2 * batch.rows[i]) << i;
  EXPECT_EQ(reply.computed_pairs, uint64_t(rows * 2));
}

// Waits for a monitor event on a socket (zmq_socket_monitor), up to kTimeout.
class SocketEvents {
 public:
  SocketEvents(zmq::context_t& context, zmq::socket_t& socket, const std::string& name, int events)
      : pair_(context, zmq::socket_type::pair) {
    if (zmq_socket_monitor(socket.handle(), name.c_str(), events) != 0) throw zmq::error_t();
    pair_.connect(name);
  }
  // The next event's id, or 0 when none came in time.
  int next() {
    zmq::pollitem_t item{pair_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, kTimeout) == 0) return 0;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(pair_, std::back_inserter(parts))) return 0;
    uint16_t id;
    std::memcpy(&id, parts.at(0).data(), 2);
    return id;
  }

 private:
  zmq::socket_t pair_;
};

TEST(MessageSocket, RouterAndDealerExchangeHelloRequestAndReply) {
  zmq::context_t context;
  MessageSocket shard(context, zmq::socket_type::router, small_limits());
  const std::string endpoint = shard.bind("tcp://127.0.0.1:*");
  EXPECT_EQ(parse_tcp_endpoint(endpoint).host, "127.0.0.1");
  EXPECT_NE(parse_tcp_endpoint(endpoint).port, 0);
  MessageSocket client(context, zmq::socket_type::dealer, small_limits());
  client.connect(endpoint);

  const Hello shard_hello{"experts-a", 2, 0xabc, 0xdef};
  ASSERT_TRUE(client.send(encode_hello({"router-0", 1, 0xabc, 0xdef})));
  auto hello = shard.receive(kTimeout);
  ASSERT_TRUE(hello && hello->result.ok());
  ASSERT_EQ(hello->result.message->kind(), MessageKind::hello);
  EXPECT_EQ(check_peer(shard_hello, std::get<Hello>(hello->result.message->body)), std::nullopt);
  ASSERT_TRUE(shard.send_to(hello->routing_id, encode_hello_ack(shard_hello)));
  auto ack = client.receive(kTimeout);
  ASSERT_TRUE(ack && ack->result.ok());
  EXPECT_EQ(ack->result.message->kind(), MessageKind::hello_ack);
  EXPECT_EQ(std::get<Hello>(ack->result.message->body).node_name, "experts-a");

  request_and_check(client, shard, 7001, 1);
  request_and_check(client, shard, 7002, 64);
  request_and_check(client, shard, 7003, 17, /*zero_copy=*/true);

  EXPECT_EQ(shard.counters().messages_in, 4u);
  EXPECT_EQ(shard.counters().messages_out, 4u);
  EXPECT_EQ(client.counters().messages_in, 4u);
  EXPECT_EQ(shard.counters().bytes_in, client.counters().bytes_out);
  EXPECT_EQ(client.counters().bytes_in, shard.counters().bytes_out);
  EXPECT_EQ(shard.counters().drops_total(), 0u);
  EXPECT_FALSE(shard.send_to("no such peer", encode_heartbeat({})));  // ROUTER_MANDATORY
}

TEST(MessageSocket, OversizedAndMalformedMessagesDoNotStopTheReceiver) {
  zmq::context_t context;
  MessageSocket shard(context, zmq::socket_type::router, small_limits());
  const std::string endpoint = shard.bind("tcp://127.0.0.1:*");
  // largest_frame_bytes(small_limits()) is a full gpu_group members frame (76 KiB; the largest
  // tensor frame is 2 KiB): that is the shard's ZMQ_MAXMSGSIZE.
  EXPECT_EQ(shard.socket().get(zmq::sockopt::maxmsgsize),
            static_cast<int64_t>(kMaxGpuGroupRanks * kGpuGroupMemberBytes));
  EXPECT_EQ(shard.socket().get(zmq::sockopt::linger), 0);
  SocketEvents events(context, shard.socket(), "inproc://transport-test-monitor",
                      ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED);

  // A raw peer with no limits sends a 1 MiB frame: ZeroMQ drops its connection while reading
  // the frame's length, before allocating it, and the shard's application never sees it.
  zmq::socket_t attacker(context, zmq::socket_type::dealer);
  attacker.set(zmq::sockopt::linger, 0);
  attacker.connect(endpoint);
  const auto request = encode_expert_request(1, make_batch(2, 8, 2, 1, 1));
  std::vector<zmq::message_t> huge;
  huge.emplace_back(request[0].data(), request[0].size());
  huge.emplace_back(size_t{1} << 20);
  ASSERT_TRUE(zmq::send_multipart(attacker, huge));
  EXPECT_EQ(events.next(), ZMQ_EVENT_ACCEPTED);
  EXPECT_EQ(events.next(), ZMQ_EVENT_DISCONNECTED);

  // A message within the frame limit but claiming too many rows is dropped by decode, counted,
  // and handed back for logging.
  MessageSocket client(context, zmq::socket_type::dealer, small_limits());
  client.connect(endpoint);
  ASSERT_TRUE(client.send(test_util::with_header(
      encode_expert_request(2, make_batch(2, 8, 2, 1, 2)), [](WireHeader& h) { h.rows = 1000; })));
  auto dropped = shard.receive(kTimeout);
  ASSERT_TRUE(dropped.has_value());
  EXPECT_FALSE(dropped->result.ok());
  EXPECT_EQ(dropped->result.reason, DropReason::too_large);
  EXPECT_EQ(shard.counters().dropped(DropReason::too_large), 1u);
  EXPECT_EQ(shard.counters().messages_in, 0u);

  // A message of thousands of tiny frames is read through and dropped.
  std::vector<zmq::message_t> many;
  many.emplace_back(request[0].data(), request[0].size());
  for (int i = 0; i < 3000; ++i) many.emplace_back("x", 1);
  ASSERT_TRUE(client.send(std::move(many)));
  auto frames = shard.receive(kTimeout);
  ASSERT_TRUE(frames.has_value());
  EXPECT_EQ(frames->result.reason, DropReason::frame_count);

  // And the shard still answers a good request.
  request_and_check(client, shard, 3, 5);
  EXPECT_EQ(shard.counters().messages_in, 1u);
  EXPECT_EQ(shard.counters().drops_total(), 2u);
}

TEST(MessageSocket, ReceiveTimesOutWhenNothingComes) {
  zmq::context_t context;
  MessageSocket shard(context, zmq::socket_type::router, small_limits());
  shard.bind("tcp://127.0.0.1:*");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(shard.receive(20ms).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 15ms);
}

}  // namespace
}  // namespace moeflow::transport
