#include "tokenizer/unicode_classes.h"

#include <algorithm>
#include <utility>

#include "tokenizer/unicode_tables.h"

namespace moeflow::tokenizer_detail {
namespace {

bool in_ranges(const CodeRange* table, size_t count, char32_t c) {
  const CodeRange* end = table + count;
  const CodeRange* it =
      std::upper_bound(table, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != table && c <= (it - 1)->last;
}

bool is_white_space_code(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

bool in_class(UnicodeClass cls, char32_t c) {
  switch (cls) {
    case UnicodeClass::letter:
      return in_ranges(k_letter, k_letter_count, c);
    case UnicodeClass::uppercase_letter:
      return in_ranges(k_uppercase_letter, k_uppercase_letter_count, c);
    case UnicodeClass::lowercase_letter:
      return in_ranges(k_lowercase_letter, k_lowercase_letter_count, c);
    case UnicodeClass::titlecase_letter:
      return in_ranges(k_titlecase_letter, k_titlecase_letter_count, c);
    case UnicodeClass::modifier_letter:
      return in_ranges(k_modifier_letter, k_modifier_letter_count, c);
    case UnicodeClass::other_letter:
      return in_ranges(k_other_letter, k_other_letter_count, c);
    case UnicodeClass::mark:
      return in_ranges(k_mark, k_mark_count, c);
    case UnicodeClass::number:
      return in_ranges(k_number, k_number_count, c);
    case UnicodeClass::decimal_number:
      return in_ranges(k_decimal_number, k_decimal_number_count, c);
    case UnicodeClass::white_space:
      return is_white_space_code(c);
  }
  return false;
}

std::optional<UnicodeClass> unicode_class_named(std::string_view name) {
  static const std::pair<std::string_view, UnicodeClass> names[] = {
      {"L", UnicodeClass::letter},
      {"Letter", UnicodeClass::letter},
      {"Lu", UnicodeClass::uppercase_letter},
      {"Uppercase_Letter", UnicodeClass::uppercase_letter},
      {"Ll", UnicodeClass::lowercase_letter},
      {"Lowercase_Letter", UnicodeClass::lowercase_letter},
      {"Lt", UnicodeClass::titlecase_letter},
      {"Titlecase_Letter", UnicodeClass::titlecase_letter},
      {"Lm", UnicodeClass::modifier_letter},
      {"Modifier_Letter", UnicodeClass::modifier_letter},
      {"Lo", UnicodeClass::other_letter},
      {"Other_Letter", UnicodeClass::other_letter},
      {"M", UnicodeClass::mark},
      {"Mark", UnicodeClass::mark},
      {"N", UnicodeClass::number},
      {"Number", UnicodeClass::number},
      {"Nd", UnicodeClass::decimal_number},
      {"Decimal_Number", UnicodeClass::decimal_number},
  };
  for (const auto& [n, cls] : names) {
    if (n == name) return cls;
  }
  return std::nullopt;
}

std::vector<char32_t> ascii_case_variants(char32_t c) {
  const char32_t lower = (c >= 'A' && c <= 'Z') ? c + 32 : c;
  std::vector<char32_t> out = {lower, lower - 32};
  for (size_t i = 0; i < k_ascii_case_folds_count; ++i) {
    if (static_cast<char32_t>(k_ascii_case_folds[i].ascii) == lower) {
      out.push_back(k_ascii_case_folds[i].other);
    }
  }
  return out;
}

}  // namespace moeflow::tokenizer_detail
