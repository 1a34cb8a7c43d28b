#include "bench/bench_args.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace moeflow::bench {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

std::optional<int64_t> parse_count(const std::string& item, int64_t max) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
  if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value < 1 ||
      value > max)
    return std::nullopt;
  return value;
}

std::vector<int64_t> parse_count_list(const std::string& text, const std::string& option,
                                      int64_t max) {
  std::vector<int64_t> out;
  for (const std::string& item : split_list(text)) {
    const auto value = parse_count(item, max);
    if (!value)
      throw Error("--" + option + " \"" + text + "\": \"" + item + "\" is not a count (1.." +
                  std::to_string(max) + ")");
    out.push_back(*value);
  }
  return out;
}

}  // namespace moeflow::bench
