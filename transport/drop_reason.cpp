#include "transport/drop_reason.h"

namespace moeflow::transport {

std::string_view drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::empty_message:
      return "empty_message";
    case DropReason::truncated_header:
      return "truncated_header";
    case DropReason::bad_magic:
      return "bad_magic";
    case DropReason::bad_version:
      return "bad_version";
    case DropReason::bad_kind:
      return "bad_kind";
    case DropReason::frame_count:
      return "frame_count";
    case DropReason::size_mismatch:
      return "size_mismatch";
    case DropReason::too_large:
      return "too_large";
    case DropReason::bad_field:
      return "bad_field";
    case DropReason::nonzero_reserved:
      return "nonzero_reserved";
    case DropReason::bad_text:
      return "bad_text";
  }
  return "unknown";
}

}  // namespace moeflow::transport
