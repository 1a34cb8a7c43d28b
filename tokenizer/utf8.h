#pragma once
// UTF-8 in the ways the tokenizer needs it: strict decoding of input text, encoding, and the
// lossy decoding of byte strings exactly as Rust's String::from_utf8_lossy does it (the Hugging
// Face library decodes byte-level tokens that way), including in a streaming form.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moeflow::tokenizer_detail {

inline constexpr std::string_view k_replacement_character = "\xEF\xBF\xBD";  // U+FFFD

void append_utf8(std::string& out, char32_t code_point);

// The byte offset of the first invalid UTF-8 sequence, or npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// Decodes valid UTF-8 (check with find_invalid_utf8 first).
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view text);

// The byte length of the character starting at `i` of valid UTF-8.
size_t utf8_length(std::string_view text, size_t i);

// Appends `bytes` decoded like String::from_utf8_lossy: each maximal invalid subpart becomes one
// U+FFFD. With `final` false, a trailing sequence that more bytes could still complete is left
// undecoded; the return value is how many bytes were consumed.
size_t append_utf8_lossy(std::string& out, std::string_view bytes, bool final);

}  // namespace moeflow::tokenizer_detail
