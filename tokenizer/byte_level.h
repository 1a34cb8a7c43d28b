#pragma once
// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable code point
// (printable ASCII and Latin-1 for themselves, the rest moved to U+0100...), so that any byte
// string is a string of vocabulary characters.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moeflow::tokenizer_detail {

char32_t byte_level_char(uint8_t byte);
std::optional<uint8_t> byte_level_byte(char32_t c);

// The byte-level spelling (UTF-8) of arbitrary bytes.
std::string to_byte_level(std::string_view bytes);

}  // namespace moeflow::tokenizer_detail
