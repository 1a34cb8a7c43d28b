#include "tokenizer/split_pattern.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {

Pattern Pattern::from_json(const JsonField& field) {
  field.require_object();
  Pattern p;
  if (field.has("Regex")) {
    p.regex_.emplace(field.string("Regex"), field.file() + ": field " + field.path() + ".Regex");
  } else if (field.has("String")) {
    p.literal_ = decode_utf8(field.string("String"));
  } else {
    field.fail("expected {\"String\": ...} or {\"Regex\": ...}, got " + field.value().dump());
  }
  return p;
}

Pattern Pattern::literal(std::u32string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

std::vector<MatchSpan> Pattern::find(std::u32string_view text) const {
  if (text.empty()) return {{0, 0, false}};
  std::vector<std::pair<size_t, size_t>> matches;
  if (regex_) {
    matches = regex_->find_all(text);
  } else if (!literal_.empty()) {
    for (size_t at = text.find(literal_); at != std::u32string_view::npos;
         at = text.find(literal_, at + literal_.size())) {
      matches.push_back({at, at + literal_.size()});
    }
  }
  std::vector<MatchSpan> out;
  size_t last = 0;
  for (const auto& [begin, end] : matches) {
    if (last != begin) out.push_back({last, begin, false});
    out.push_back({begin, end, true});
    last = end;
  }
  if (last != text.size()) out.push_back({last, text.size(), false});
  return out;
}

SplitBehavior split_behavior_from_json(const JsonField& field) {
  const std::string name = field.value().is_string() ? field.value().get<std::string>() : "";
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  field.fail("unsupported split behavior " + field.value().dump());
}

// Follows NormalizedString::split in the tokenizers crate.
std::vector<std::pair<size_t, size_t>> split_spans(std::vector<MatchSpan> spans,
                                                   SplitBehavior behavior, bool invert) {
  if (invert) {
    for (MatchSpan& s : spans) s.is_match = !s.is_match;
  }
  struct Kept {
    size_t begin, end;
    bool remove;
  };
  std::vector<Kept> kept;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const MatchSpan& s : spans) kept.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::removed:
      for (const MatchSpan& s : spans) kept.push_back({s.begin, s.end, s.is_match});
      break;
    case SplitBehavior::contiguous: {
      bool previous = false;
      for (const MatchSpan& s : spans) {
        if (s.is_match == previous && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.begin, s.end, false});
        }
        previous = s.is_match;
      }
      break;
    }
    case SplitBehavior::merged_with_previous: {
      bool previous = false;
      for (const MatchSpan& s : spans) {
        if (s.is_match && !previous && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.begin, s.end, false});
        }
        previous = s.is_match;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool previous = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end, false});
        }
        previous = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  std::vector<std::pair<size_t, size_t>> out;
  for (const Kept& k : kept) {
    if (!k.remove && k.end > k.begin) out.push_back({k.begin, k.end});
  }
  return out;
}

}  // namespace moeflow::tokenizer_detail
