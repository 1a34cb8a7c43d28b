#pragma once
// Splitting text by a pattern the way the Hugging Face library's NormalizedString::split does:
// the pattern marks spans of the text as matches or not, and a behaviour (isolated, removed,
// merged with the previous or next span, contiguous) decides which pieces come out.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/json_field.h"
#include "tokenizer/split_regex.h"

namespace moeflow::tokenizer_detail {

// A span of a text (code point indices), flagged when the pattern matched it.
struct MatchSpan {
  size_t begin, end;
  bool is_match;
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// A `pattern` field: {"String": "..."} (a literal) or {"Regex": "..."}.
class Pattern {
 public:
  static Pattern from_json(const JsonField& field);
  static Pattern literal(std::u32string text);

  // Spans covering all of `text`, in order.
  std::vector<MatchSpan> find(std::u32string_view text) const;

 private:
  std::optional<SplitRegex> regex_;
  std::u32string literal_;
};

SplitBehavior split_behavior_from_json(const JsonField& field);

// The spans of a character predicate: each matching character is its own match.
template <class Predicate>
std::vector<MatchSpan> character_matches(std::u32string_view text, Predicate matches) {
  std::vector<MatchSpan> out;
  if (text.empty()) return {{0, 0, false}};
  size_t last = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!matches(text[i])) continue;
    if (last < i) out.push_back({last, i, false});
    out.push_back({i, i + 1, true});
    last = i + 1;
  }
  if (last < text.size()) out.push_back({last, text.size(), false});
  return out;
}

// The [begin, end) pieces to keep, empty ones dropped.
std::vector<std::pair<size_t, size_t>> split_spans(std::vector<MatchSpan> spans,
                                                   SplitBehavior behavior, bool invert);

}  // namespace moeflow::tokenizer_detail
