#pragma once
// Shared by the files of the wire codec (wire_format.cpp, wire_gpu_*.cpp) and nothing else:
// header building and the drop helpers, so that a kind's body can live in its own file.
#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/wire_format.h"

namespace moeflow::transport::codec {

// Number of body frames of a kind.
size_t body_frames_of(MessageKind kind);

WireHeader make_header(MessageKind kind, const Origin& origin, uint64_t request_id);
zmq::message_t header_frame(const WireHeader& h);

// 1..kMaxNodeNameBytes of [A-Za-z0-9._:-].
bool is_valid_node_name(std::string_view name);

DecodeResult drop(DropReason reason, std::string detail);
std::string u64s(uint64_t v);

// A bad_field drop when a header field the kind does not use is nonzero.
std::optional<DecodeResult> check_unused_zero(const WireHeader& h, bool layer, bool rows,
                                              bool hidden, bool top_k, bool status);

// The body of a gpu_group message (wire_gpu_group.cpp); the header is already checked up to
// its frame count.
DecodeResult decode_gpu_group(const WireHeader& h, const std::vector<zmq::message_t>& frames);
// The body of a gpu_group_ready message (wire_gpu_group_ready.cpp), likewise.
DecodeResult decode_gpu_group_ready(const WireHeader& h, const std::vector<zmq::message_t>& frames);

}  // namespace moeflow::transport::codec
