#pragma once
// The `decoder` of tokenizer.json, which turns token strings back into text: ByteLevel (GPT-2,
// Llama-3, Qwen2, DeepSeek), the SentencePiece sequence Replace("▁", " ") / ByteFallback / Fuse /
// Strip (Llama-2, Mixtral), Metaspace, and Sequence of these; no decoder joins tokens with spaces
// as the library does. WordPiece, BPEDecoder and CTC are refused.
//
// The chain runs token by token (DecodeRun) and releases text as soon as no later token can
// change it, so decode() and streaming share one implementation and the streamed pieces always
// add up to decode()'s result.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_field.h"
#include "tokenizer/split_pattern.h"

namespace moeflow::tokenizer_detail {

class Decoder {
 public:
  // A null node joins the tokens with single spaces.
  static Decoder from_json(const JsonField& node);

 private:
  friend class DecodeRun;
  struct Step {
    enum class Kind { replace, byte_fallback, fuse, strip, byte_level, metaspace, join } kind;
    std::optional<Pattern> pattern;  // replace
    std::string content;             // replace: the replacement
    char32_t character = 0;          // strip: what to strip; metaspace: the replacement
    size_t start = 0, stop = 0;      // strip
    bool drop_first = false;         // metaspace: the first token loses its replacement chars
  };
  void add(const JsonField& node);

  std::vector<Step> steps_;
  bool fused_ = false;  // a Fuse or ByteLevel step has been added
};

// One pass of the decoder over a stream of token strings.
class DecodeRun {
 public:
  explicit DecodeRun(const Decoder& decoder);

  // Feeds one token; appends to `out` the text that has become final.
  void push(std::string_view token, std::string& out);
  // Ends the stream: appends what was held back, and starts a new stream.
  void finish(std::string& out);

 private:
  // A token, or (after Fuse / ByteLevel) a continuation of the previous one.
  struct Piece {
    std::string text;
    bool continues;
  };
  struct State {
    std::string bytes;      // byte_fallback: the run of byte tokens; byte_level: undecoded bytes
    bool emitted = false;   // fuse / byte_level / strip: this token has produced output
    size_t tokens = 0;      // metaspace / join: tokens seen
    size_t strip_left = 0;  // strip: leading characters still to strip
    std::string held;       // strip: trailing characters that may be stripped
  };
  void feed(size_t step, Piece piece, std::string& out);
  void flush(size_t step, std::string& out);
  void end_strip_token(size_t step, std::string& out);

  const Decoder* decoder_;
  std::vector<State> states_;
};

}  // namespace moeflow::tokenizer_detail
