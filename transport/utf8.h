#pragma once
// UTF-8 checks for the text that crosses the wire (error messages): well-formed per RFC 3629,
// so a peer cannot smuggle overlong forms or surrogates into logs.
#include <cstddef>
#include <string>
#include <string_view>

namespace moeflow::transport {

// Length of the well-formed UTF-8 sequence at s[i], or 0 if none starts there (overlong forms,
// surrogates, code points above U+10FFFF, and sequences cut short are not well-formed).
size_t utf8_sequence_length(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// `text` cut to at most `max_bytes` at a character boundary, each byte that starts no
// well-formed sequence replaced by '?'.
std::string sanitize_utf8(std::string_view text, size_t max_bytes);

}  // namespace moeflow::transport
