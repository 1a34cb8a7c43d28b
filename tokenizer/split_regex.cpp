#include "tokenizer/split_regex.h"

#include <optional>

#include "tokenizer/split_regex_compile.h"

namespace moeflow::tokenizer_detail {

using Op = SplitRegex::Op;

bool SplitRegex::CharSet::contains_slow(char32_t c) const {
  bool in = false;
  for (const auto& [first, last] : ranges) in = in || (c >= first && c <= last);
  for (const auto& [cls, neg] : classes) in = in || (in_class(cls, c) != neg);
  return in != negated;
}

bool SplitRegex::CharSet::contains(char32_t c) const {
  if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
  return contains_slow(c);
}

SplitRegex::SplitRegex(std::string_view pattern, const std::string& context) {
  compile_split_regex(pattern, context, sets_, program_);
}

// Backtracking over the program, alternatives on an explicit stack. Lookaheads run as separate
// matches and do not backtrack into (they are atomic in Oniguruma too).
bool SplitRegex::match_at(size_t start_pc, size_t start_pos, std::u32string_view text, size_t& end,
                          Backtrack& stack) const {
  // The stack is shared with the caller (and with lookaheads): this call owns what lies above
  // `base` and leaves the stack as it found it.
  const size_t base = stack.size();
  stack.push_back({static_cast<int32_t>(start_pc), start_pos});
  const size_t n = text.size();
  while (stack.size() > base) {
    auto [pc, pos] = stack.back();
    stack.pop_back();
    bool alive = true;
    while (alive) {
      const Instruction& in = program_[pc];
      switch (in.op) {
        case Op::character:
          alive = pos < n && sets_[in.a].contains(text[pos]);
          ++pos;
          ++pc;
          break;
        case Op::split:
          stack.push_back({in.b, pos});
          pc = in.a;
          break;
        case Op::jump:
          pc = in.a;
          break;
        case Op::line_start:
          alive = pos == 0 || text[pos - 1] == '\n';
          ++pc;
          break;
        case Op::line_end:
          alive = pos == n || text[pos] == '\n';
          ++pc;
          break;
        case Op::text_start:
          alive = pos == 0;
          ++pc;
          break;
        case Op::text_end:
          alive = pos == n;
          ++pc;
          break;
        case Op::text_end_newline:
          alive = pos == n || (pos + 1 == n && text[pos] == '\n');
          ++pc;
          break;
        case Op::lookahead:
        case Op::negative_lookahead: {
          size_t ignored = 0;
          const bool found = match_at(in.a, pos, text, ignored, stack);
          alive = found == (in.op == Op::lookahead);
          pc = in.b;
          break;
        }
        case Op::match:
          end = pos;
          stack.resize(base);
          return true;
      }
    }
  }
  return false;
}

std::vector<std::pair<size_t, size_t>> SplitRegex::find_all(std::u32string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  const size_t n = text.size();
  size_t from = 0;
  std::optional<size_t> last_match_end;
  Backtrack stack;
  while (from <= n) {
    size_t begin = from, end = 0;
    bool found = false;
    for (; begin <= n; ++begin) {
      if (match_at(0, begin, text, end, stack)) {
        found = true;
        break;
      }
    }
    if (!found) break;
    if (begin == end && last_match_end == end) {
      ++from;  // an empty match right after the previous one: step over one character
      continue;
    }
    from = end;
    last_match_end = end;
    out.push_back({begin, end});
  }
  return out;
}

}  // namespace moeflow::tokenizer_detail
