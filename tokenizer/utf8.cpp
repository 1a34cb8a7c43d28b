#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// How one sequence starting at `i` reads: a whole character, an invalid subpart (to become one
// U+FFFD), or a valid prefix cut off by the end of the input. Follows Rust's Utf8Chunks.
enum class Sequence { character, invalid, truncated };

Sequence read_sequence(std::string_view s, size_t i, size_t& length) {
  const auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t first = at(i);
  if (first < 0x80) {
    length = 1;
    return Sequence::character;
  }
  size_t width = 0;
  if (first >= 0xC2 && first <= 0xDF) width = 2;
  if (first >= 0xE0 && first <= 0xEF) width = 3;
  if (first >= 0xF0 && first <= 0xF4) width = 4;
  if (width == 0) {
    length = 1;
    return Sequence::invalid;
  }
  // The second byte's range depends on the first (no overlongs, surrogates or > U+10FFFF).
  uint8_t low = 0x80, high = 0xBF;
  if (first == 0xE0) low = 0xA0;
  if (first == 0xED) high = 0x9F;
  if (first == 0xF0) low = 0x90;
  if (first == 0xF4) high = 0x8F;
  for (size_t k = 1; k < width; ++k) {
    if (i + k >= s.size()) {
      length = k;
      return Sequence::truncated;
    }
    const uint8_t b = at(i + k);
    const bool ok = k == 1 ? (b >= low && b <= high) : is_continuation(b);
    if (!ok) {
      length = k;
      return Sequence::invalid;
    }
  }
  length = width;
  return Sequence::character;
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

size_t find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t length = 0;
    if (read_sequence(text, i, length) != Sequence::character) return i;
    i += length;
  }
  return std::string_view::npos;
}

size_t utf8_length(std::string_view text, size_t i) {
  const uint8_t b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    const auto b = [&](size_t k) {
      return static_cast<char32_t>(static_cast<uint8_t>(text[i + k]));
    };
    char32_t c = 0;
    if (n == 1) c = b(0);
    if (n == 2) c = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    if (n == 3) c = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (n == 4)
      c = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    out += c;
    i += n;
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

size_t append_utf8_lossy(std::string& out, std::string_view bytes, bool final) {
  size_t i = 0;
  while (i < bytes.size()) {
    size_t length = 0;
    const Sequence kind = read_sequence(bytes, i, length);
    if (kind == Sequence::truncated && !final) break;
    if (kind == Sequence::character) {
      out.append(bytes.substr(i, length));
    } else {
      out += k_replacement_character;
    }
    i += length;
  }
  return i;
}

}  // namespace moeflow::tokenizer_detail
