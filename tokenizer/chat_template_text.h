#pragma once
// Reads a Jinja chat template far enough to recognise it, without interpreting it: a canonical
// form that ignores layout (whitespace outside string literals, the '-' trim markers, "..." vs
// '...', escapes, 'a' + 'b' vs 'ab'), the string literals it holds, and whether it would print
// raw text outside its {{ }} and {% %} tags (rendered as transformers does, with trim_blocks and
// lstrip_blocks).
#include <string>
#include <string_view>
#include <vector>

namespace moeflow::tokenizer_detail {

struct TemplateText {
  std::string canonical;              // string literals written '...' with \' and \\ escaped
  std::vector<std::string> literals;  // their values
  bool prints_raw_text = false;
};

TemplateText read_template_text(std::string_view jinja);

}  // namespace moeflow::tokenizer_detail
