#include "tokenizer/chat_template_text.h"

#include <algorithm>

namespace moeflow::tokenizer_detail {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The raw text between two tags as Jinja prints it with trim_blocks and lstrip_blocks.
std::string printed(std::string text, bool after_block, bool trim_left, bool before_block,
                    bool trim_right) {
  if (trim_left) {
    size_t k = 0;
    while (k < text.size() && is_space(text[k])) ++k;
    text.erase(0, k);
  } else if (after_block && !text.empty() && text[0] == '\n') {
    text.erase(0, 1);  // trim_blocks: the newline after a block tag
  }
  if (trim_right) {
    while (!text.empty() && is_space(text.back())) text.pop_back();
  } else if (before_block) {
    // lstrip_blocks: spaces and tabs between the start of a line and a block tag.
    size_t k = text.size();
    while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
    if (k == 0 || text[k - 1] == '\n') text.erase(k);
  }
  return text;
}

}  // namespace

TemplateText read_template_text(std::string_view t) {
  TemplateText out;
  std::string raw;           // raw text since the last tag
  bool after_block = false;  // the last tag was {% %}
  bool trim_left = false;    // the last tag ended with '-'
  size_t i = 0;
  const size_t n = t.size();
  while (i < n) {
    // Raw text up to the next tag.
    if (!(t[i] == '{' && i + 1 < n && (t[i + 1] == '{' || t[i + 1] == '%' || t[i + 1] == '#'))) {
      raw += t[i++];
      continue;
    }
    const char kind = t[i + 1];
    const bool trim_right = i + 2 < n && t[i + 2] == '-';
    if (!printed(raw, after_block, trim_left, kind == '%', trim_right).empty()) {
      out.prints_raw_text = true;
    }
    raw.clear();
    const std::string_view close = kind == '{' ? "}}" : (kind == '%' ? "%}" : "#}");
    i += trim_right ? 3 : 2;
    if (kind == '#') {  // a comment
      const size_t end = t.find(close, i);
      i = end == std::string_view::npos ? n : end + 2;
      trim_left = end != std::string_view::npos && end > 0 && t[end - 1] == '-';
      after_block = false;
      continue;
    }
    out.canonical += kind == '{' ? "{{" : "{%";
    // Inside the tag: drop whitespace, keep literals in one canonical spelling.
    while (i < n && t.compare(i, 2, close) != 0 &&
           !(t[i] == '-' && t.compare(i + 1, 2, close) == 0)) {
      const char c = t[i];
      if (is_space(c)) {
        ++i;
        continue;
      }
      if (c != '\'' && c != '"') {
        out.canonical += c;
        ++i;
        continue;
      }
      std::string value;
      for (;;) {
        const char quote = t[i++];
        while (i < n && t[i] != quote) {
          if (t[i] == '\\' && i + 1 < n) {
            const char e = t[i + 1];
            value += e == 'n' ? '\n' : (e == 't' ? '\t' : (e == 'r' ? '\r' : e));
            i += 2;
          } else {
            value += t[i++];
          }
        }
        ++i;  // the closing quote
        // 'a' + 'b' reads as 'ab'.
        size_t k = i;
        while (k < n && is_space(t[k])) ++k;
        if (k < n && t[k] == '+') {
          size_t m = k + 1;
          while (m < n && is_space(t[m])) ++m;
          if (m < n && (t[m] == '\'' || t[m] == '"')) {
            i = m;
            continue;
          }
        }
        break;
      }
      out.canonical += '\'';
      for (char v : value) {
        if (v == '\'' || v == '\\') out.canonical += '\\';
        out.canonical += v;
      }
      out.canonical += '\'';
      out.literals.push_back(std::move(value));
    }
    trim_left = i < n && t[i] == '-';
    i = std::min(n, i + (trim_left ? 3 : 2));
    out.canonical += kind == '{' ? "}}" : "%}";
    after_block = kind == '%';
  }
  // Jinja drops one newline at the very end of a template.
  if (!raw.empty() && raw.back() == '\n') raw.pop_back();
  if (!printed(raw, after_block, trim_left, false, false).empty()) out.prints_raw_text = true;
  return out;
}

}  // namespace moeflow::tokenizer_detail
