#pragma once
// Why a message from the network was dropped. The names are metric labels
// (moeflow_link_dropped_frames_total{reason="bad_magic"}), so they never change once
// shipped.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moeflow::transport {

enum class DropReason : uint8_t {
  empty_message,     // no frames at all
  truncated_header,  // header frame shorter than the fixed header
  bad_magic,         // not a moeflow message
  bad_version,       // a protocol version this node does not speak
  bad_kind,          // unknown message kind
  frame_count,       // header's frame_count differs from the frames received, or wrong for the kind
  size_mismatch,     // a frame's byte size differs from what the header implies
  too_large,         // over a limit: rows, top_k, frame bytes, text length
  bad_field,         // a header field or tensor element out of range for this node
  nonzero_reserved,  // reserved header bytes or undefined flag bits set
  bad_text,          // node name or error text not valid UTF-8 / not in the allowed characters
};

inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::bad_text) + 1;

// "bad_magic" etc.: the metric label of a reason.
std::string_view drop_reason_name(DropReason reason);

}  // namespace moeflow::transport
