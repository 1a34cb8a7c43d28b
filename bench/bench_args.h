#pragma once
// Comma-separated option values of the benchmarks ("1,4,16").
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeflow::bench {

// The items between commas ("" gives one empty item).
std::vector<std::string> split_list(const std::string& text);

// The whole of `item` as an integer in [1, max], or nothing.
std::optional<int64_t> parse_count(const std::string& item, int64_t max);

// "1,4,16" -> {1, 4, 16}, each in [1, max]; throws moeflow::Error naming --option and the bad
// item.
std::vector<int64_t> parse_count_list(const std::string& text, const std::string& option,
                                      int64_t max);

}  // namespace moeflow::bench
