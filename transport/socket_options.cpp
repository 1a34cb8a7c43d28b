#include "transport/socket_options.h"

#include <algorithm>

namespace moeflow::transport {

SocketOptions socket_options_for(const DecodeLimits& limits) {
  SocketOptions options;
  options.max_frame_bytes =
      static_cast<int64_t>(std::min<uint64_t>(largest_frame_bytes(limits), uint64_t{INT64_MAX}));
  return options;
}

zmq::socket_t make_socket(zmq::context_t& context, zmq::socket_type type,
                          const SocketOptions& options) {
  zmq::socket_t socket(context, type);
  socket.set(zmq::sockopt::linger, options.linger_ms);
  socket.set(zmq::sockopt::maxmsgsize, options.max_frame_bytes);
  socket.set(zmq::sockopt::sndhwm, options.send_high_water_mark);
  socket.set(zmq::sockopt::rcvhwm, options.receive_high_water_mark);
  socket.set(zmq::sockopt::tcp_keepalive, options.tcp_keepalive ? 1 : 0);
  if (options.tcp_keepalive)
    socket.set(zmq::sockopt::tcp_keepalive_idle, options.tcp_keepalive_idle_s);
  if (type == zmq::socket_type::router && options.router_mandatory)
    socket.set(zmq::sockopt::router_mandatory, true);
  return socket;
}

std::string last_endpoint(const zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

}  // namespace moeflow::transport
