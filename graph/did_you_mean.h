#pragma once
// Typo suggestions for unknown keys and names ("exprets" -> "experts").
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace moeflow {

// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
// neighbouring characters each cost one, so the commonest typo, a swap, is distance 1. Letter
// case is ignored.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a likely typo, else "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace moeflow
