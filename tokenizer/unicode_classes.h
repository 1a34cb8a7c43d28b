#pragma once
// Unicode character classes for the split regexes (\p{L}, \p{N}, \s, ...) and for the added-token
// rules (whitespace around lstrip/rstrip tokens), with the membership the Hugging Face library's
// regex engine gives them.
#include <optional>
#include <string_view>
#include <vector>

namespace moeflow::tokenizer_detail {

enum class UnicodeClass {
  letter,            // \p{L}
  uppercase_letter,  // \p{Lu}
  lowercase_letter,  // \p{Ll}
  titlecase_letter,  // \p{Lt}
  modifier_letter,   // \p{Lm}
  other_letter,      // \p{Lo}
  mark,              // \p{M}
  number,            // \p{N}
  decimal_number,    // \p{Nd}
  white_space,       // \s (the White_Space property)
};

bool in_class(UnicodeClass cls, char32_t c);

// The class a \p{...} name denotes ("L", "Letter", "Lu", "N", ...), if supported.
std::optional<UnicodeClass> unicode_class_named(std::string_view name);

// The code points that (?i:c) matches for an ASCII letter c (c itself included).
std::vector<char32_t> ascii_case_variants(char32_t c);

inline bool is_white_space(char32_t c) {
  return in_class(UnicodeClass::white_space, c);
}

}  // namespace moeflow::tokenizer_detail
