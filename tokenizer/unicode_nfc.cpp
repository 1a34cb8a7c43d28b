#include "tokenizer/unicode_nfc.h"

#include <algorithm>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

// Hangul syllables decompose and compose arithmetically (Unicode 3.12).
constexpr char32_t k_s_base = 0xAC00, k_l_base = 0x1100, k_v_base = 0x1161, k_t_base = 0x11A7;
constexpr char32_t k_l_count = 19, k_v_count = 21, k_t_count = 28;
constexpr char32_t k_n_count = k_v_count * k_t_count, k_s_count = k_l_count * k_n_count;

unsigned combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const auto* end = k_combining_classes + k_combining_classes_count;
  const auto* it =
      std::upper_bound(k_combining_classes, end, c,
                       [](char32_t v, const CombiningClassRange& r) { return v < r.first; });
  if (it == k_combining_classes || c > (it - 1)->last) return 0;
  return (it - 1)->ccc;
}

const Decomposition* find_decomposition(char32_t c) {
  const auto* end = k_decompositions + k_decompositions_count;
  const auto* it = std::lower_bound(k_decompositions, end, c,
                                    [](const Decomposition& d, char32_t v) { return d.code < v; });
  return it != end && it->code == c ? it : nullptr;
}

void decompose(char32_t c, std::u32string& out) {
  if (c >= k_s_base && c < k_s_base + k_s_count) {
    const char32_t s = c - k_s_base;
    out += k_l_base + s / k_n_count;
    out += k_v_base + (s % k_n_count) / k_t_count;
    if (s % k_t_count != 0) out += k_t_base + s % k_t_count;
    return;
  }
  const Decomposition* d = find_decomposition(c);
  if (d == nullptr) {
    out += c;
    return;
  }
  decompose(d->first, out);
  if (d->second != 0) decompose(d->second, out);
}

// The primary composite of a starter and a following character, or 0.
char32_t compose(char32_t first, char32_t second) {
  if (first >= k_l_base && first < k_l_base + k_l_count && second >= k_v_base &&
      second < k_v_base + k_v_count) {
    return k_s_base + ((first - k_l_base) * k_v_count + (second - k_v_base)) * k_t_count;
  }
  if (first >= k_s_base && first < k_s_base + k_s_count && (first - k_s_base) % k_t_count == 0 &&
      second > k_t_base && second < k_t_base + k_t_count) {
    return first + (second - k_t_base);
  }
  const auto* end = k_compositions + k_compositions_count;
  const auto* it =
      std::lower_bound(k_compositions, end, std::make_pair(first, second),
                       [](const Composition& c, const std::pair<char32_t, char32_t>& v) {
                         return c.first != v.first ? c.first < v.first : c.second < v.second;
                       });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

}  // namespace

std::string nfc(std::string_view text) {
  // Below U+0300 nothing decomposes or composes: most text leaves here unchanged.
  if (std::all_of(text.begin(), text.end(),
                  [](char b) { return static_cast<uint8_t>(b) < 0xCC; })) {
    return std::string(text);
  }
  std::u32string chars;
  for (char32_t c : decode_utf8(text)) decompose(c, chars);

  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < chars.size();) {
    if (combining_class(chars[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < chars.size() && combining_class(chars[j]) != 0) ++j;
    std::stable_sort(chars.begin() + i, chars.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }

  // Canonical composition: each character joins the last starter unless blocked.
  std::u32string out;
  out.reserve(chars.size());
  size_t starter = std::u32string::npos;
  unsigned last_class = 0;
  for (char32_t c : chars) {
    const unsigned cls = combining_class(c);
    if (starter != std::u32string::npos) {
      const bool blocked = out.size() - 1 != starter && (last_class == 0 || last_class >= cls);
      if (!blocked) {
        if (char32_t composite = compose(out[starter], c); composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cls == 0) starter = out.size();
    last_class = cls;
    out += c;
  }
  return encode_utf8(out);
}

}  // namespace moeflow::tokenizer_detail
