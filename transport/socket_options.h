#pragma once
// Socket options every moeflow ZeroMQ socket gets, applied in one place: no linger at shutdown,
// ZMQ_MAXMSGSIZE as the first defence against oversized frames (ZeroMQ closes the connection of
// a peer that sends one, before anything is allocated for it), TCP keepalive to notice dead peers.
#include <zmq.hpp>

#include <cstdint>
#include <string>

#include "transport/wire_format.h"

namespace moeflow::transport {

struct SocketOptions {
  int64_t max_frame_bytes = -1;        // ZMQ_MAXMSGSIZE (per frame); -1: unlimited
  int linger_ms = 0;                   // ZMQ_LINGER: pending messages are dropped at close
  int send_high_water_mark = 1000;     // ZMQ_SNDHWM, in messages
  int receive_high_water_mark = 1000;  // ZMQ_RCVHWM, in messages
  bool tcp_keepalive = true;           // ZMQ_TCP_KEEPALIVE ...
  int tcp_keepalive_idle_s = 30;       // ... first probe after this idle time
  bool router_mandatory = true;  // ROUTER: sending to an unknown peer fails instead of vanishing
};

// The options for a socket that receives messages decoded under `limits`.
SocketOptions socket_options_for(const DecodeLimits& limits);

// A socket of `type` with `options` applied. Throws zmq::error_t as cppzmq does.
zmq::socket_t make_socket(zmq::context_t& context, zmq::socket_type type,
                          const SocketOptions& options);

// The endpoint a socket last bound, with the real port after binding "tcp://host:*".
std::string last_endpoint(const zmq::socket_t& socket);

}  // namespace moeflow::transport
