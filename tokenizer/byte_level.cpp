#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

struct Alphabet {
  std::array<char32_t, 256> chars{};
  std::array<std::string, 256> utf8;
  Alphabet() {
    // bytes_to_unicode() of GPT-2's encoder.py.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      chars[b] = printable ? static_cast<char32_t>(b) : next++;
      append_utf8(utf8[b], chars[b]);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t byte_level_char(uint8_t byte) {
  return alphabet().chars[byte];
}

std::optional<uint8_t> byte_level_byte(char32_t c) {
  if (c < 256) {
    const bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
    if (printable) return static_cast<uint8_t>(c);
    return std::nullopt;
  }
  if (c >= 256 + 68) return std::nullopt;  // 68 bytes are moved, to U+0100..U+0143
  for (int b = 0; b < 256; ++b) {
    if (alphabet().chars[b] == c) return static_cast<uint8_t>(b);
  }
  return std::nullopt;
}

std::string to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) out += alphabet().utf8[static_cast<uint8_t>(b)];
  return out;
}

}  // namespace moeflow::tokenizer_detail
