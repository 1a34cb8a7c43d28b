#include "transport/message_socket.h"

#include <zmq_addon.hpp>

namespace moeflow::transport {
namespace {

SocketOptions with_frame_limit(SocketOptions options, const DecodeLimits& limits) {
  if (options.max_frame_bytes < 0)
    options.max_frame_bytes = socket_options_for(limits).max_frame_bytes;
  return options;
}

}  // namespace

MessageSocket::MessageSocket(zmq::context_t& context, zmq::socket_type type,
                             const DecodeLimits& limits, SocketOptions options)
    : socket_(make_socket(context, type, with_frame_limit(options, limits))),
      limits_(limits),
      is_router_(type == zmq::socket_type::router) {}

std::string MessageSocket::bind(const std::string& endpoint) {
  socket_.bind(endpoint);
  return last_endpoint(socket_);
}

void MessageSocket::connect(const std::string& endpoint) {
  socket_.connect(endpoint);
}

bool MessageSocket::send(std::vector<zmq::message_t> frames) {
  uint64_t bytes = 0;
  for (const auto& f : frames) bytes += f.size();
  return send_frames(frames, bytes);
}

bool MessageSocket::send_to(std::string_view routing_id, std::vector<zmq::message_t> frames) {
  uint64_t bytes = 0;
  for (const auto& f : frames) bytes += f.size();
  frames.insert(frames.begin(), zmq::message_t(routing_id.data(), routing_id.size()));
  return send_frames(frames, bytes);
}

bool MessageSocket::send_frames(std::vector<zmq::message_t>& frames, uint64_t payload_bytes) {
  try {
    if (!zmq::send_multipart(socket_, frames, zmq::send_flags::dontwait)) return false;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return false;  // ROUTER_MANDATORY: no peer with this id
    throw;
  }
  ++counters_.messages_out;
  counters_.bytes_out += payload_bytes;
  return true;
}

std::optional<Received> MessageSocket::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;

  // Read frame by frame so that a message with thousands of frames costs no more than the
  // frames a valid one may have: the surplus is read and released, not kept.
  Received received;
  std::vector<zmq::message_t> frames;
  const size_t keep = kMaxBodyFrames + 2;  // header + body + one surplus to trip the check
  size_t surplus = 0;
  bool first = true;
  while (true) {
    zmq::message_t frame;
    // ZeroMQ delivers messages whole: only the first part can be missing (a spurious wake-up).
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) {
      if (first) return std::nullopt;
      break;
    }
    const bool more = frame.more();
    if (first && is_router_) {
      received.routing_id = frame.to_string();
    } else {
      counters_.bytes_in += frame.size();
      if (frames.size() < keep)
        frames.push_back(std::move(frame));
      else
        ++surplus;
    }
    first = false;
    if (!more) break;
  }
  // More than `keep` frames always fails decode's frame count check.
  received.result = decode(frames, limits_);
  if (received.result.ok()) {
    ++counters_.messages_in;
  } else {
    counters_.count_drop(received.result.reason);
    if (surplus > 0) received.result.detail += " (" + std::to_string(surplus) + " more frames)";
  }
  return received;
}

}  // namespace moeflow::transport
