#pragma once
// What the HTTP API needs from a tokenizer: prompts to token ids, chat messages to a prompt (the
// checkpoint's chat template), and generated ids back to text, incrementally and never in the
// middle of a UTF-8 character. Implemented over tokenizer/ (api/tokenizer_codec.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/openai_request.h"

namespace moeflow::api {

class TextStream {
 public:
  virtual ~TextStream() = default;
  // The text that this token completes (may be empty while a character is incomplete).
  virtual std::string push(int32_t token) = 0;
  // Whatever is still held back at the end of the generation.
  virtual std::string finish() = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // A completion prompt, with the tokenizer's special tokens (e.g. BOS) as it adds them.
  virtual std::vector<int32_t> encode_prompt(const std::string& text) const = 0;
  // Chat messages through the checkpoint's chat template, with the assistant's turn opened.
  // Throws ApiError when the checkpoint has no usable chat template.
  virtual std::vector<int32_t> encode_chat(const std::vector<ChatTurn>& messages) const = 0;
  virtual std::unique_ptr<TextStream> decoder() const = 0;
};

}  // namespace moeflow::api
