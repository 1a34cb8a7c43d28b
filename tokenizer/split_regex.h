#pragma once
// The regular expressions of tokenizer.json split patterns, matched the way the Hugging Face
// library matches them (Oniguruma, Ruby syntax, leftmost-first alternation, greedy quantifiers),
// over code points. std::regex cannot do this: it has no \p{L}.
//
// Supported: literals and escapes (\r \n \t \f \v \xHH \x{H..} \uHHHH, escaped punctuation),
// `.`, classes [...] / [^...] with ranges, \s \S \p{..} \P{..} (L, Lu, Ll, Lt, Lm, Lo, M, N, Nd),
// groups ( ) (?: ), case-insensitive groups (?i: ) over ASCII letters, lookahead (?= ) (?! ),
// alternation, ? * + {n} {n,} {n,m} and their lazy forms, anchors ^ $ (line) \A \z \Z.
// Anything else (backreferences, lookbehind, \d, \w, \b, possessive quantifiers, nested
// classes) is refused with moeflow::Error rather than matched differently.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/unicode_classes.h"

namespace moeflow::tokenizer_detail {

class SplitRegex {
 public:
  // `context` names the pattern in errors, e.g. "tokenizer.json: field pre_tokenizer.pattern".
  SplitRegex(std::string_view pattern, const std::string& context);

  // The non-overlapping matches, left to right, as [begin, end) code point indices, the way
  // Oniguruma's find_iter reports them (an empty match right after a match is skipped).
  std::vector<std::pair<size_t, size_t>> find_all(std::u32string_view text) const;

  // One class of characters: ranges and Unicode classes, each possibly negated, the whole
  // possibly negated. ASCII membership is precomputed.
  struct CharSet {
    bool negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;
    std::vector<std::pair<UnicodeClass, bool>> classes;  // (class, negated)
    uint64_t ascii[2] = {0, 0};
    bool contains(char32_t c) const;
    bool contains_slow(char32_t c) const;
  };

  enum class Op : uint8_t {
    character,         // a: the CharSet index
    split,             // try a, then b
    jump,              // a
    line_start,        // ^
    line_end,          // $
    text_start,        // \A
    text_end,          // \z
    text_end_newline,  // \Z
    lookahead,         // sub-program at a, continue at b when it matches
    negative_lookahead,
    match,
  };
  struct Instruction {
    Op op;
    int32_t a = 0, b = 0;
  };

 private:
  using Backtrack = std::vector<std::pair<int32_t, size_t>>;  // (pc, position) to resume at
  bool match_at(size_t pc, size_t pos, std::u32string_view text, size_t& end,
                Backtrack& stack) const;

  std::vector<CharSet> sets_;
  std::vector<Instruction> program_;
};

}  // namespace moeflow::tokenizer_detail
