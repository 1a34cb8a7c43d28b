#pragma once
// Decoding while tokens are generated: feed ids one at a time and get back only text that is
// final — whole UTF-8 characters that no later token can change. Byte-level tokens that end in
// the middle of a character are held back until it completes, and so is a run of <0xNN>
// byte-fallback tokens (the library decodes the whole run at once, and one bad byte turns all of
// it into U+FFFD). What step() and finish() return, concatenated, is exactly
// Tokenizer::decode() of all the ids.
#include <cstdint>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace moeflow {

namespace tokenizer_detail {
class DecodeRun;
}

class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  ~StreamDecoder();
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;

  // The text that became final with `id` (often empty while a character is incomplete).
  std::string step(int32_t id);
  // The text still held back at the end of the stream (an incomplete character becomes U+FFFD,
  // as decode() makes it). The decoder is then ready for a new stream.
  std::string finish();

 private:
  std::shared_ptr<const tokenizer_detail::TokenizerState> state_;
  bool skip_special_tokens_;
  std::unique_ptr<tokenizer_detail::DecodeRun> run_;
};

}  // namespace moeflow
