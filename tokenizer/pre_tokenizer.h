#pragma once
// The `pre_tokenizer` of tokenizer.json: splits normalized text into the words that BPE sees.
// Supported: ByteLevel (with or without its GPT-2 regex), Split (a String or Regex pattern, any
// behavior, invert), Digits, Metaspace, and Sequence of these — the shapes GPT-2, Llama-3,
// Qwen2, DeepSeek and SentencePiece-converted tokenizers serialize. Others are refused.
#include <string>
#include <vector>

#include "tokenizer/json_field.h"
#include "tokenizer/split_pattern.h"

namespace moeflow::tokenizer_detail {

class PreTokenizer {
 public:
  // A null node is no pre-tokenizer (the whole piece is one word).
  static PreTokenizer from_json(const JsonField& node);

  // Appends the words of `piece` (non-empty) to `words`. `at_text_start`: the piece starts the
  // input text (Metaspace's prepend_scheme "first" looks at that).
  void split(const std::string& piece, bool at_text_start, std::vector<std::string>& words) const;

 private:
  struct Piece {
    std::string text;
    bool at_text_start;
  };
  struct Step {
    enum class Kind { byte_level, split, digits, metaspace } kind;
    bool add_prefix_space = false;   // byte_level
    bool use_regex = true;           // byte_level
    std::optional<Pattern> pattern;  // split
    SplitBehavior behavior = SplitBehavior::isolated;
    bool invert = false;
    bool individual_digits = false;  // digits
    char32_t replacement = 0;        // metaspace
    enum class Prepend { always, first, never } prepend = Prepend::always;
    bool split_words = true;  // metaspace
  };
  void add(const JsonField& node);
  static void apply(const Step& step, std::vector<Piece>& pieces);

  std::vector<Step> steps_;
};

}  // namespace moeflow::tokenizer_detail
