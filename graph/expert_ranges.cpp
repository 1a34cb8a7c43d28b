#include "graph/expert_ranges.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace moeflow {
namespace {

constexpr const char* kSyntaxHint = "write \"all\", or ids and ranges like \"0-3,8,10-12\"";

// [begin, end) of `s` without surrounding spaces and tabs.
std::pair<size_t, size_t> trim(std::string_view s, size_t begin, size_t end) {
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  return {begin, end};
}

// A non-negative decimal number, or nullopt if `s` is anything else.
std::optional<int64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

RangeError error(size_t offset, std::string message, std::string hint = kSyntaxHint) {
  return RangeError{offset, std::move(message), std::move(hint)};
}

}  // namespace

std::variant<RangeList, RangeError> parse_ranges(std::string_view text) {
  const auto [first, last] = trim(text, 0, text.size());
  if (first == last) return error(0, "empty range", kSyntaxHint);
  if (text.substr(first, last - first) == "all") return RangeList{true, {}};

  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const auto [b, e] = trim(text, pos, comma);
    const std::string_view item = text.substr(b, e - b);
    if (item.empty())
      return error(b, "empty item in range list \"" + std::string(text) + "\"",
                   "remove the extra comma");
    if (item == "all")
      return error(b, "\"all\" cannot be combined with other items",
                   "write \"all\" alone, or list the ids");
    const size_t dash = item.find('-', 1);  // from 1: a leading '-' is a malformed number
    std::optional<int64_t> lo, hi;
    if (dash == std::string_view::npos) {
      lo = hi = parse_id(item);
    } else {
      const auto [lb, le] = trim(item, 0, dash);
      const auto [hb, he] = trim(item, dash + 1, item.size());
      lo = parse_id(item.substr(lb, le - lb));
      hi = parse_id(item.substr(hb, he - hb));
    }
    if (!lo || !hi) return error(b, "\"" + std::string(item) + "\" is not an id or a range A-B");
    if (*lo > *hi)
      return error(b, "range " + std::string(item) + " is backwards",
                   "write " + std::to_string(*hi) + "-" + std::to_string(*lo));
    if (*hi > kRangeIdMax)
      return error(b,
                   "id " + std::to_string(*hi) + " is too large (at most " +
                       std::to_string(kRangeIdMax) + ")",
                   "layer and expert ids count from 0 up to the model's count minus one");
    for (int64_t v = *lo; v <= *hi; ++v) ids.push_back(v);
    pos = comma + 1;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return RangeList{false, std::move(ids)};
}

std::string format_ranges(const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace moeflow
