#pragma once
// The range syntax of `layers` and `experts`: "all", or comma-separated ids and inclusive ranges,
// e.g. "0-3,8,10-12". Overlaps are allowed and merged; the order of items does not matter.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace moeflow {

// Larger ids are refused while parsing, so that "0-4000000000" cannot allocate gigabytes; no
// model has anywhere near this many layers or experts.
inline constexpr int64_t kRangeIdMax = 65535;

struct RangeList {
  bool all = false;
  std::vector<int64_t> ids;  // sorted, without duplicates; empty when `all`
};

struct RangeError {
  size_t offset = 0;  // of the offending item in the text
  std::string message;
  std::string hint;
};

std::variant<RangeList, RangeError> parse_ranges(std::string_view text);

// The compact form of sorted, unique ids: {0,1,2,3,8} -> "0-3,8". Empty ids give "".
std::string format_ranges(const std::vector<int64_t>& ids);

}  // namespace moeflow
