#pragma once
// One ZeroMQ socket that sends encoded messages and receives decoded ones, counting traffic and
// drops. Owned and used by one thread (ZeroMQ sockets are not thread-safe); the counters are
// copied out to the metrics owner from that thread.
#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/frame_counters.h"
#include "transport/socket_options.h"
#include "transport/wire_format.h"

namespace moeflow::transport {

struct Received {
  std::string routing_id;  // ROUTER: the sending peer; empty for other socket types
  DecodeResult result;     // not ok: the message was dropped (and counted); log result.detail
};

class MessageSocket {
 public:
  // The options' max_frame_bytes is taken from `limits` when left at -1.
  MessageSocket(zmq::context_t& context, zmq::socket_type type, const DecodeLimits& limits,
                SocketOptions options = {});

  // Binds and returns the bound endpoint ("tcp://127.0.0.1:*" -> "tcp://127.0.0.1:41234").
  std::string bind(const std::string& endpoint);
  void connect(const std::string& endpoint);

  // Queues one message without blocking. False when it cannot be queued now: the high-water
  // mark is reached, or (ROUTER) no peer has this routing id.
  bool send(std::vector<zmq::message_t> frames);
  bool send_to(std::string_view routing_id, std::vector<zmq::message_t> frames);

  // Waits up to `timeout` for one message; nullopt when none came. A dropped message is
  // returned too (result not ok) so that the caller can log it with the peer's routing id.
  std::optional<Received> receive(std::chrono::milliseconds timeout);

  const FrameCounters& counters() const { return counters_; }
  const DecodeLimits& limits() const { return limits_; }
  zmq::socket_t& socket() { return socket_; }

 private:
  bool send_frames(std::vector<zmq::message_t>& frames, uint64_t payload_bytes);

  zmq::socket_t socket_;
  DecodeLimits limits_;
  bool is_router_;
  FrameCounters counters_;
};

}  // namespace moeflow::transport
